# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Take a server out of an HAProxy backend and put it back, through HAProxy's runtime API.

Runs on the controller, inside the task that releases the host, so a drain costs two socket
round trips instead of an Ansible task (a module process) on each side of the release. The admin
socket is a Unix socket path (HAProxy on the controller, or forwarded to it) or HOST:PORT for a
`stats socket ipv4@...:PORT level admin`.
"""

from __future__ import annotations

import csv
import io
import socket
import time
from typing import Callable, Dict, Tuple

from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError


class HAProxyError(GoshipError):
    """HAProxy's runtime API could not be reached, or refused or did not finish a change."""


def _address(spec: str) -> Tuple[int, object]:
    if spec.startswith('/'):
        return socket.AF_UNIX, spec
    host, sep, port = spec.rpartition(':')
    if not sep or not port.isdigit():
        raise HAProxyError('HAProxy admin socket %r is neither a Unix socket path nor HOST:PORT' % spec)
    return socket.AF_INET6 if ':' in host.strip('[]') else socket.AF_INET, (host.strip('[]'), int(port))


class RuntimeAPI:
    """One command per connection (HAProxy's non-interactive mode), bounded by `timeout`."""

    def __init__(self, address: str, timeout: float = 5.0):
        self.address = address
        self.family, self.target = _address(address)
        self.timeout = timeout

    def command(self, line: str) -> str:
        try:
            with socket.socket(self.family, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.target)
                sock.sendall(line.encode() + b'\n')
                chunks = []
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
        except OSError as exc:
            raise HAProxyError('HAProxy admin socket %s: %s' % (self.address, exc.strerror or exc)) from exc
        return b''.join(chunks).decode('utf-8', 'replace')

    def server_stats(self, backend: str, server: str) -> Dict[str, str]:
        """The `show stat` row of backend/server (status, scur, ...)."""
        text = self.command('show stat %s 4 -1' % backend)
        rows = list(csv.reader(io.StringIO(text.lstrip('# '))))
        header = rows[0] if rows else []
        for row in rows[1:]:
            stats = dict(zip(header, row))
            if stats.get('pxname') == backend and stats.get('svname') == server:
                return stats
        raise HAProxyError('HAProxy has no server %s in backend %s (admin socket %s): check the backend and '
                           'server names' % (server, backend, self.address))


# HAProxy's check_status values of a passed health check (layer 4, 6, 7).
_CHECK_PASSED = ('L4OK', 'L6OK', 'L7OK', 'L7OKC')


def _is_up(stats: Dict[str, str]) -> bool:
    """Up, with HAProxy's last health check passed when it checks the server. Right after
    `enable` a server shows UP whatever its state (no check runs in maintenance): with no check
    result yet, or a failed one, it is not up until a check passes. "UP 1/2" with a passed check
    is a server on its way up, which HAProxy sends traffic to. Without checks: "no check"."""
    status = stats.get('status', '')
    return status == 'no check' or (status.startswith('UP') and stats.get('check_status') in _CHECK_PASSED)


def set_server(api: RuntimeAPI, backend: str, server: str, enabled: bool, timeout: float,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> str:
    """Disable (drain) or enable a server and wait, at most `timeout` seconds, until HAProxy
    reports it in maintenance with no sessions left, or up again (its health check passed).
    Returns its last status."""
    api.server_stats(backend, server)   # a wrong name fails here, before anything changes
    answer = api.command('%s server %s/%s' % ('enable' if enabled else 'disable', backend, server)).strip()
    if answer:
        raise HAProxyError('HAProxy refused to %s %s/%s: %s' % ('enable' if enabled else 'disable',
                                                                backend, server, answer))
    deadline = clock() + timeout
    while True:
        stats = api.server_stats(backend, server)
        status = stats.get('status', '')
        if (_is_up(stats) if enabled else status.startswith('MAINT') and stats.get('scur') in ('0', '')):
            return status
        if clock() >= deadline:
            raise HAProxyError('%s/%s is %s (last check %s) with %s sessions after %s s, not %s' % (
                backend, server, status, stats.get('check_status') or 'none', stats.get('scur'), timeout,
                'UP' if enabled else 'drained'))
        sleep(0.1)
