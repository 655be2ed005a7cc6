# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HAProxy drain of a release against a real HAProxy (Debian's, the lab's) started here on
loopback with a Unix and a TCP admin socket, in front of a real HTTP server: drain and undrain,
a wrong server name, a server that never comes back up, an admin socket that is not there."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.goship.deploy.plugins.plugin_utils.haproxy import HAProxyError, RuntimeAPI, set_server

pytestmark = pytest.mark.skipif(not shutil.which('haproxy'), reason='needs haproxy (make lab deps install it)')


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture()
def backend():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'ok')

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture()
def haproxy(tmp_path, backend):
    sock, admin_port, dead_port = tmp_path / 'admin.sock', free_port(), free_port()
    (tmp_path / 'haproxy.cfg').write_text(f"""
global
    stats socket {sock} mode 600 level admin
    stats socket ipv4@127.0.0.1:{admin_port} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
backend app
    default-server inter 100ms fall 1 rise 1
    server app-01 127.0.0.1:{backend} check
    server app-02 127.0.0.1:{dead_port} check
""")
    proc = subprocess.Popen(['haproxy', '-db', '-f', str(tmp_path / 'haproxy.cfg')],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = RuntimeAPI(str(sock), timeout=2)
    deadline = time.monotonic() + 10
    while True:
        try:
            if api.server_stats('app', 'app-01')['status'].startswith('UP'):
                break
        except HAProxyError:
            pass
        assert time.monotonic() < deadline, 'haproxy did not start'
        time.sleep(0.05)
    yield api, admin_port
    proc.terminate()
    proc.wait(timeout=10)


def test_drain_and_undrain_over_the_unix_socket(haproxy):
    api, _port = haproxy
    assert set_server(api, 'app', 'app-01', enabled=False, timeout=5).startswith('MAINT')
    assert api.server_stats('app', 'app-01')['status'].startswith('MAINT')
    assert set_server(api, 'app', 'app-01', enabled=True, timeout=5).startswith('UP')
    assert api.server_stats('app', 'app-01')['status'].startswith('UP')


def test_the_tcp_admin_socket_works_the_same(haproxy):
    _api, port = haproxy
    api = RuntimeAPI('127.0.0.1:%d' % port, timeout=2)
    assert set_server(api, 'app', 'app-01', enabled=False, timeout=5).startswith('MAINT')
    assert set_server(api, 'app', 'app-01', enabled=True, timeout=5).startswith('UP')


def test_a_wrong_server_name_changes_nothing(haproxy):
    api, _port = haproxy
    with pytest.raises(HAProxyError, match='no server app-09 in backend app'):
        set_server(api, 'app', 'app-09', enabled=False, timeout=1)
    assert api.server_stats('app', 'app-01')['status'].startswith('UP')


def test_a_server_that_stays_down_is_reported_after_the_timeout(haproxy):
    api, _port = haproxy
    set_server(api, 'app', 'app-02', enabled=False, timeout=5)
    started = time.monotonic()
    # DOWN, or UP for a moment with a failed check HAProxy has not acted on yet: never up.
    with pytest.raises(HAProxyError, match=r'app/app-02 is .*\(last check .*\).* not UP'):
        set_server(api, 'app', 'app-02', enabled=True, timeout=1)
    assert time.monotonic() - started < 5


def test_a_missing_admin_socket_is_named(tmp_path):
    api = RuntimeAPI(str(tmp_path / 'nothing.sock'), timeout=1)
    with pytest.raises(HAProxyError, match='nothing.sock'):
        set_server(api, 'app', 'app-01', enabled=False, timeout=1)


@pytest.mark.parametrize('spec', ['relative/path.sock', '127.0.0.1', 'host:port'])
def test_an_address_that_is_neither_path_nor_host_port_is_refused(spec):
    with pytest.raises(HAProxyError, match='neither a Unix socket path nor HOST:PORT'):
        RuntimeAPI(spec)
