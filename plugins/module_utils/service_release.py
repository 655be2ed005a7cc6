# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's release of a service packaged as a .deb: look, install, restart, gate, roll back.

Runs on the target host with the standard library only. Everything a rollout does on one host
is here so that it costs one Ansible task (one round trip) instead of dozens: read what is
installed, write the service's files, install the cached package, restart, wait for the health
gate, and on failure put the previous package and files back. The outcome and the time of each
phase are returned for the deploy report.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shlex
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible.module_utils.urls import open_url

from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError
from ansible_collections.goship.deploy.plugins.module_utils.file_ops import sha256_file, write_atomic

STATE_FILE = 'release.json'
UNIT_DIRS = ('/etc/systemd/system/', '/lib/systemd/system/', '/usr/lib/systemd/system/')


class ReleaseError(GoshipError):
    """A release could not be checked, installed or gated on this host."""


# Runner: (argv) -> (rc, stdout, stderr). The module passes AnsibleModule.run_command.
Runner = Callable[[List[str]], Tuple[int, str, str]]


@dataclass
class Gate:
    """The health gate: health_url answers 200 and status_url reports the version (JSON key or
    plain body) with the required fields, within timeout; then still so after `stable` seconds
    with the unit not restarted."""

    health_url: str
    status_url: str
    version_key: str = 'version'
    require: Dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    interval: float = 1.0
    stable: float = 3.0
    request_timeout: float = 5.0


@dataclass
class GateResult:
    passed: bool
    reported_version: str
    observation: str
    seconds: float


def http_get(url: str, timeout: float) -> Tuple[int, str, str]:
    """(status, body, error). Status -1 when no HTTP answer came (error says why)."""
    try:
        resp = open_url(url, timeout=timeout, follow_redirects='none', use_proxy=False)
        try:
            return resp.status, resp.read(65536).decode('utf-8', 'replace'), ''
        finally:
            resp.close()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(65536).decode('utf-8', 'replace') if exc.fp else '', ''
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, 'reason', exc)
        return -1, '', str(reason)


def read_status(body: str, version_key: str) -> Tuple[str, Dict[str, Any]]:
    """The version a status body reports and its JSON fields ({} for a plain-text body)."""
    if not version_key:
        return body.strip(), {}
    try:
        data = json.loads(body)
    except ValueError:
        return '', {}
    if not isinstance(data, dict):
        return '', {}
    return str(data.get(version_key, '')), data


def unmet_requirements(fields: Dict[str, Any], require: Dict[str, str]) -> List[str]:
    """'Key=value (got X)' for every required status field that does not hold its value."""
    return ['%s=%s (got %s)' % (key, want, json.dumps(fields.get(key)))
            for key, want in sorted(require.items()) if str(fields.get(key)) != str(want)]


def run_gate(gate: Gate, version: str, invocation: Callable[[], str],
             get: Callable[[str, float], Tuple[int, str, str]] = http_get,
             clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> GateResult:
    """Poll until the gate holds or the timeout passes (bounded in time, every `interval`)."""
    started = clock()
    deadline = started + gate.timeout
    last = 'no answer yet'
    reported = ''
    while True:
        status, body, error = get(gate.health_url, gate.request_timeout)
        if status != 200:
            last = '%s answered %s%s' % (gate.health_url, status, ' (%s)' % error if error else '')
        else:
            status, body, error = get(gate.status_url, gate.request_timeout)
            reported, fields = read_status(body, gate.version_key) if status == 200 else ('', {})
            unmet = unmet_requirements(fields, gate.require)
            if status != 200:
                last = '%s answered %s%s' % (gate.status_url, status, ' (%s)' % error if error else '')
            elif reported != version:
                last = '%s reports version %s, not %s' % (gate.status_url, json.dumps(reported), json.dumps(version))
            elif unmet:
                last = '%s does not report %s' % (gate.status_url, ', '.join(unmet))
            else:
                break
        if clock() >= deadline:
            return GateResult(False, reported, '%s after %.0f s' % (last, gate.timeout), clock() - started)
        sleep(gate.interval)
    if gate.stable > 0:
        before = invocation()
        sleep(gate.stable)
        status, _body, error = get(gate.health_url, gate.request_timeout)
        if invocation() != before:
            return GateResult(False, reported, 'the unit restarted during the %.0f s stability window'
                              % gate.stable, clock() - started)
        if status != 200:
            return GateResult(False, reported, '%s answered %s after the %.0f s stability window'
                              % (gate.health_url, status, gate.stable), clock() - started)
    return GateResult(True, reported, 'healthy, version %s' % reported, clock() - started)


class Host:
    """What the release needs from the host: dpkg, systemctl, journalctl and files."""

    def __init__(self, run: Runner):
        self.run = run

    def must(self, argv: List[str], what: str) -> str:
        rc, out, err = self.run(argv)
        if rc != 0:
            raise ReleaseError('%s failed (%s exited %d): %s' % (what, argv[0], rc, (err or out).strip()[-2000:]))
        return out

    def installed_version(self, package: str) -> str:
        rc, out, _err = self.run(['dpkg-query', '--show', '--showformat', '${db:Status-Status} ${Version}', package])
        status, _sep, version = out.strip().partition(' ')
        return version if rc == 0 and status == 'installed' else ''

    def deb_fields(self, path: str) -> Tuple[str, str]:
        out = self.must(['dpkg-deb', '--showformat', '${Package}\n${Version}', '--show', path],
                        'reading %s' % path)
        name, _sep, version = out.partition('\n')
        return name.strip(), version.strip()

    def unit(self, unit: str) -> Dict[str, str]:
        _rc, out, _err = self.run(['systemctl', 'show', '--property=ActiveState,SubState,LoadState,'
                                   'UnitFileState,InvocationID,NRestarts,Result', unit])
        return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)

    def systemctl(self, *args: str) -> None:
        self.must(['systemctl'] + list(args), 'systemctl %s' % ' '.join(args))

    def journal(self, unit: str, lines: int, own: bool = False) -> List[str]:
        """The unit's last journal lines: systemd's about it and the service's own, or with `own`
        only what the service itself wrote (its error, not "Scheduled restart job")."""
        # No --since: with it, --lines counts from the start of the window, not back from its end.
        match = ['_SYSTEMD_UNIT=' + unit] if own else ['--unit', unit]
        _rc, out, _err = self.run(['journalctl'] + match + ['--lines', str(lines), '--no-pager', '--output', 'cat'])
        return out.splitlines()[-lines:]

    def install(self, path: str) -> None:
        self.must(['env', 'DEBIAN_FRONTEND=noninteractive', 'dpkg', '--force-confdef', '--force-confold',
                   '--install', path], 'installing %s' % os.path.basename(path))


def read_file(path: str) -> Optional[bytes]:
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_file(spec: Dict[str, Any], content: Optional[bytes]) -> None:
    """Write (or, for content None, remove) one managed file with its owner and mode."""
    path = spec['path']
    if content is None:
        if os.path.lexists(path):
            os.unlink(path)
        return
    write_atomic(path, content, int(str(spec.get('mode') or '0644'), 8))
    uid = pwd.getpwnam(spec.get('owner') or 'root').pw_uid
    gid = grp.getgrnam(spec.get('group') or 'root').gr_gid
    os.chown(path, uid, gid)


def file_differs(spec: Dict[str, Any]) -> bool:
    path = spec['path']
    current = read_file(path)
    if current != spec['content'].encode('utf-8'):
        return True
    info = os.stat(path)
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        return True
    return ((info.st_mode & 0o7777) != int(str(spec.get('mode') or '0644'), 8)
            or owner != (spec.get('owner') or 'root') or group != (spec.get('group') or 'root'))


DRAIN_WORDS = {
    'none': 'the host was not drained',
    'consul': 'the host stays in Consul maintenance',
    'external': 'the host stays drained',
}


@dataclass
class Request:
    """What to release (the module's options, checked by the module's argument_spec)."""

    name: str
    version: str
    package_name: str
    arch: str
    cache_dir: str
    sha256: str = ''
    files: List[Dict[str, Any]] = field(default_factory=list)
    remove: List[str] = field(default_factory=list)
    socket: Optional[bool] = None
    user: str = ''
    group: str = ''
    directories: List[Dict[str, Any]] = field(default_factory=list)
    drain: str = 'none'
    consul_url: str = 'http://127.0.0.1:8500'
    journal_lines: int = 20
    cache_keep: int = 3
    gate: Optional[Gate] = None

    @property
    def unit(self) -> str:
        return self.name + '.service'

    def deb(self, version: str) -> str:
        return os.path.join(self.cache_dir, '%s_%s_%s.deb' % (self.package_name, version, self.arch))


class Release:
    """Check or carry out one release on this host; see the module for the contract."""

    def __init__(self, request: Request, host: Host, check_mode: bool = False):
        self.req = request
        self.host = host
        self.check_mode = check_mode
        self.phases: Dict[str, float] = {}
        self._clock = time.monotonic()

    # -- bookkeeping ---------------------------------------------------------------------------
    def _phase(self, name: str) -> None:
        now = time.monotonic()
        self.phases[name] = round(self.phases.get(name, 0.0) + now - self._clock, 3)
        self._clock = now

    def last_outcome(self) -> Dict[str, Any]:
        raw = read_file(os.path.join(self.req.cache_dir, STATE_FILE))
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}

    def _record(self, outcome: str, version: str) -> None:
        entry = {'version': version, 'outcome': outcome, 'at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
        write_atomic(os.path.join(self.req.cache_dir, STATE_FILE), json.dumps(entry).encode(), 0o600)

    def cached_sha256(self, version: str) -> str:
        """The verified SHA-256 of the cached package of `version`, or '' when it is not usable."""
        path = self.req.deb(version)
        recorded = read_file(path + '.sha256')
        if not recorded or not os.path.isfile(path):
            return ''
        digest = sha256_file(path)
        return digest if recorded.decode('ascii', 'replace').split(' ')[0].strip() == digest else ''

    # -- look ------------------------------------------------------------------------------------
    def check(self) -> Dict[str, Any]:
        """What is on the host and whether the release needs doing (changes nothing)."""
        req = self.req
        before = self.host.installed_version(req.package_name)
        unit = self.host.unit(req.unit)
        reasons = []
        if before != req.version:
            reasons.append('installed %s' % (before or 'nothing'))
        changed_files = [spec['path'] for spec in req.files if file_differs(spec)]
        changed_files += [path for path in req.remove if os.path.lexists(path)]
        if changed_files:
            reasons.append('files differ: %s' % ', '.join(changed_files))
        if unit.get('ActiveState') != 'active':
            reasons.append('%s is %s' % (req.unit, unit.get('ActiveState') or 'unknown'))
        last = self.last_outcome()
        if last.get('version') == req.version and last.get('outcome') not in ('upgraded', 'restarted', 'unchanged'):
            reasons.append('the last release of %s here ended %s' % (req.version, last.get('outcome')))
        if req.socket is False and self._socket_holds_port():
            reasons.append('%s.socket is active but socket activation is off' % req.name)
        health = ''
        if not reasons and req.gate:
            probe = run_gate(Gate(req.gate.health_url, req.gate.status_url, req.gate.version_key, req.gate.require,
                                  timeout=0, stable=0, request_timeout=req.gate.request_timeout),
                             req.version, lambda: '')
            health = probe.observation
            if not probe.passed:
                reasons.append('not healthy: %s' % probe.observation)
        sha = self.cached_sha256(req.version)
        self._phase('check')
        return {
            'version_before': before,
            'needs_release': bool(reasons),
            'reasons': reasons,
            'cached': bool(sha) and (not req.sha256 or sha == req.sha256),
            'health': health,
            'unit': unit,
        }

    def stage(self, path: str) -> None:
        """Move the package copied to `path` into the cache once it proves to be the release."""
        req = self.req
        if not req.sha256:
            raise ReleaseError('staging a package needs the sha256 it must have. Nothing was changed.')
        digest = sha256_file(path)
        if digest != req.sha256:
            raise ReleaseError('the copied package has SHA-256 %s, expected %s: the copy is corrupt or not '
                               'the release. Nothing was changed.' % (digest, req.sha256))
        dest = req.deb(req.version)
        try:
            os.makedirs(req.cache_dir, mode=0o700, exist_ok=True)
            shutil.move(path, dest)
            os.chown(dest, 0, 0)
            os.chmod(dest, 0o600)
            self._verify_package()   # writes the checksum beside it
        except (OSError, ReleaseError) as exc:   # a full disk, most often: leave no partial package
            for leftover in (dest, dest + '.sha256'):
                if os.path.exists(leftover):
                    os.unlink(leftover)
            if isinstance(exc, ReleaseError):
                raise
            raise ReleaseError('could not put %s into the host cache %s: %s. Nothing was installed; the running '
                               'release is untouched.' % (os.path.basename(dest), req.cache_dir,
                                                          exc.strerror or exc))
        self._phase('stage')

    def _socket_holds_port(self) -> bool:
        state = self.host.unit(self.req.name + '.socket')
        return state.get('LoadState') == 'loaded' and (
            state.get('ActiveState') == 'active' or state.get('UnitFileState') == 'enabled')

    # -- do --------------------------------------------------------------------------------------
    def deploy(self) -> Dict[str, Any]:
        req = self.req
        look = self.check()
        result = {'changed': False, 'version': req.version, 'version_before': look['version_before'],
                  'version_after': look['version_before'], 'reasons': look['reasons'], 'phases': self.phases}
        if not look['needs_release']:
            result.update(outcome='unchanged', version_after=req.version, health=look['health'])
            return result
        result['changed'] = True
        if self.check_mode:
            result['outcome'] = 'upgraded' if look['version_before'] != req.version else 'restarted'
            return result
        self._verify_package()
        self._account()
        self._phase('prepare')
        if req.drain == 'consul':
            self._consul_maintenance(True)
            self._phase('drain')
        backups = {path: read_file(path) for path in [spec['path'] for spec in req.files] + req.remove}
        wanted: Dict[str, Optional[bytes]] = {spec['path']: spec['content'].encode('utf-8') for spec in req.files}
        wanted.update((path, None) for path in req.remove)
        failure = None
        try:
            self._apply(req.version, wanted, reinstall=look['version_before'] != req.version)
            gate = self._gate(req.version)
            result['health'] = gate.observation
            if not gate.passed:
                failure = 'failed its health gate: %s' % gate.observation
        except ReleaseError as exc:
            failure = exc.message
            self._phase('install')
        if failure is None:
            self._record('upgraded' if look['version_before'] != req.version else 'restarted', req.version)
            if req.drain == 'consul':
                self._consul_maintenance(False)
                self._phase('undrain')
            result.update(outcome='upgraded' if look['version_before'] != req.version else 'restarted',
                          version_after=req.version, pruned=self._prune(look['version_before']))
            self._phase('prune')
            return result
        return self._fail(result, look['version_before'], failure, backups)

    def migrate(self, database: Dict[str, Any], migrations_dir: str, table: str, lock_wait: int,
                dry_run: bool = False) -> Dict[str, Any]:
        """Apply the cached package's pending migrations (nothing is installed or restarted); with
        `dry_run`, list them in a read-only session instead."""
        from ansible_collections.goship.deploy.plugins.module_utils.codedeploy_bundle import BundleError
        from ansible_collections.goship.deploy.plugins.module_utils.codedeploy_hooks import migrate_script
        req = self.req
        self._verify_package()
        work = tempfile.mkdtemp(prefix='migrate.', dir=req.cache_dir)
        try:
            self.host.must(['dpkg-deb', '--extract', req.deb(req.version), work + '/pkg'], 'unpacking the package')
            found = work + '/pkg' + migrations_dir
            if not os.path.isdir(found):
                self._phase('migrate')
                return {'changed': False, 'applied': [], 'pending': [], 'phases': self.phases,
                        'msg': '%s %s ships no migrations' % (req.package_name, req.version)}
            env_file = work + '/migrate.env'
            lines = ['PGHOST=%s' % database['host'], 'PGPORT=%s' % database.get('port', 5432),
                     'PGDATABASE=%s' % database['name'], 'PGUSER=%s' % database['user'],
                     'PGSSLMODE=%s' % database.get('sslmode', 'prefer'), 'PGCONNECT_TIMEOUT=10',
                     'PGAPPNAME=goship-migrate-%s' % req.name]
            if database.get('password') is not None:
                lines.append('PGPASSWORD=%s' % database['password'])
            write_atomic(env_file, ''.join('%s\n' % shlex.quote(line) for line in lines).encode(), 0o600)
            try:
                script = migrate_script(req.name, found, pg_env_file=env_file, migrations_table=table,
                                        lock_wait=lock_wait)
            except BundleError as exc:
                raise ReleaseError('migration settings: %s. Nothing was changed.' % exc)
            write_atomic(work + '/migrate', script.encode(), 0o700)
            rc, out, err = self.host.run([work + '/migrate'] + (['--dry-run'] if dry_run else []))
            listed = {kind: [line.split(' ', 2)[2] for line in out.splitlines() if line.startswith('migrate: %s ' % kind)]
                      for kind in ('applying', 'pending')}
            applied = listed['applying']
            self._phase('migrate')
            if dry_run:
                if rc != 0:
                    raise ReleaseError('Could not list the pending migrations of %s %s: %s' % (
                        req.name, req.version, ' | '.join((out.splitlines() + err.splitlines())[-5:])))
                return {'changed': bool(listed['pending']), 'applied': [], 'pending': listed['pending'],
                        'phases': self.phases}
            if rc != 0:
                raise ReleaseError('Migrations of %s %s failed; that file was rolled back, nothing after it was '
                                   'applied, and no service was restarted: %s'
                                   % (req.name, req.version, ' | '.join((out.splitlines() + err.splitlines())[-5:])),
                                   {'applied': applied, 'phases': self.phases, 'changed': bool(applied)})
            return {'changed': bool(applied), 'applied': applied, 'phases': self.phases}
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _verify_package(self) -> None:
        req = self.req
        path = req.deb(req.version)
        if not os.path.isfile(path):
            raise ReleaseError('%s is not in the host cache (%s): stage it first. Nothing was changed.'
                               % (os.path.basename(path), req.cache_dir))
        digest = sha256_file(path)
        recorded = (read_file(path + '.sha256') or b'').decode('ascii', 'replace').split(' ')[0].strip()
        expected = req.sha256 or recorded
        if not expected:
            raise ReleaseError('%s has no expected SHA-256 (give sha256). Nothing was changed.' % path)
        if digest != expected:
            raise ReleaseError('%s has SHA-256 %s, expected %s: the copy is corrupt or not the release. '
                               'Nothing was changed.' % (path, digest, expected))
        name, version = self.host.deb_fields(path)
        if (name, version) != (req.package_name, req.version):
            raise ReleaseError('%s holds %s %s, not %s %s: check the artifact key. Nothing was changed.'
                               % (path, name, version, req.package_name, req.version))
        if recorded != digest:
            write_atomic(path + '.sha256', ('%s  %s\n' % (digest, os.path.basename(path))).encode(), 0o600)

    def _account(self) -> None:
        req = self.req
        if req.group and self.host.run(['getent', 'group', req.group])[0] != 0:
            self.host.must(['groupadd', '--system', req.group], 'creating group %s' % req.group)
        if req.user and self.host.run(['getent', 'passwd', req.user])[0] != 0:
            home = next((d['path'] for d in req.directories if d.get('owner') == req.user), '/nonexistent')
            self.host.must(['useradd', '--system', '--gid', req.group or req.user, '--home-dir', home,
                            '--no-create-home', '--shell', '/usr/sbin/nologin', req.user],
                           'creating user %s' % req.user)
        for spec in req.directories:
            os.makedirs(spec['path'], exist_ok=True)
            os.chmod(spec['path'], int(str(spec.get('mode') or '0755'), 8))
            os.chown(spec['path'], pwd.getpwnam(spec.get('owner') or 'root').pw_uid,
                     grp.getgrnam(spec.get('group') or 'root').gr_gid)

    def _apply(self, version: str, contents: Dict[str, Optional[bytes]], reinstall: bool) -> None:
        """Write the files, install `version` if needed and make sure the unit runs it afresh."""
        req = self.req
        changed = [path for path, content in contents.items() if read_file(path) != content]
        for path in contents:
            write_file(self._spec(path), contents[path])
        unit_changed = [path for path in changed if path.startswith(UNIT_DIRS)]
        if unit_changed:
            self.host.systemctl('daemon-reload')
        socket_changed = any(path.endswith('/%s.socket' % req.name) for path in unit_changed)
        self._phase('configure')
        invocation = self.host.unit(req.unit).get('InvocationID', '')
        if reinstall or self.host.installed_version(req.package_name) != version:
            self.host.install(req.deb(version))
        self._phase('install')
        if req.socket is False and self._socket_holds_port():
            self.host.systemctl('disable', '--now', req.name + '.socket')
        elif req.socket and socket_changed:
            self.host.systemctl('stop', req.unit)
            self.host.systemctl('restart', req.name + '.socket')
        state = self.host.unit(req.unit)
        if state.get('UnitFileState') not in ('enabled', 'static', 'enabled-runtime', 'linked'):
            self.host.systemctl('enable', req.unit)
        if (state.get('ActiveState') != 'active' or state.get('InvocationID', '') == invocation
                or socket_changed):
            self.host.systemctl('restart', req.unit)
        self._phase('restart')

    def _gate(self, version: str) -> GateResult:
        if self.req.gate is None:
            return GateResult(True, version, 'not gated', 0.0)
        outcome = run_gate(self.req.gate, version, lambda: self.host.unit(self.req.unit).get('InvocationID', ''))
        self._phase('gate')
        return outcome

    def diagnostics(self) -> Dict[str, Any]:
        state = self.host.unit(self.req.unit)
        return {'active_state': '%s/%s' % (state.get('ActiveState', '?'), state.get('SubState', '?')),
                'restarts': int(state.get('NRestarts') or 0),
                'result': state.get('Result', ''),
                'journal': self.host.journal(self.req.unit, self.req.journal_lines),
                'output': self.host.journal(self.req.unit, 5, own=True)}

    def _fail(self, result: Dict[str, Any], before: str, failure: str,
              backups: Dict[str, Optional[bytes]]) -> Dict[str, Any]:
        req = self.req
        diag = self.diagnostics()
        result['unit_state'] = diag
        # The service's own last words say why; systemd's lines (restart counter...) are in the result.
        tail = ' | '.join(diag['output'][-3:] or diag['journal'][-5:])
        said = '%s %s was not released on this host: %s. Unit %s, %d restarts%s.' % (
            req.name, req.version, failure, diag['active_state'], diag['restarts'],
            '; journal: %s' % tail if tail else '')
        same_version = before == req.version   # only the files changed: put them back
        if not before or not (same_version or self.cached_sha256(before)):
            self._record('failed', req.version)
            why = ('nothing to roll back to (first install)' if not before
                   else 'no verified cached package of %s to roll back to' % before)
            result.update(outcome='failed', version_after=self.host.installed_version(req.package_name),
                          failed=True, msg='%s %s; %s.' % (said, why[0].upper() + why[1:], DRAIN_WORDS[req.drain]))
            return result
        what = 'the previous files' if same_version else before
        try:
            self._restore(backups)
            self._apply(before, {}, reinstall=not same_version)
            back = self._gate(before)
            if not back.passed:
                raise ReleaseError('%s failed its health gate too: %s' % (what, back.observation))
        except ReleaseError as exc:
            self._record('failed', req.version)
            result.update(outcome='failed', version_after=self.host.installed_version(req.package_name), failed=True,
                          msg='%s The rollback to %s failed too (%s); %s and needs a person.'
                          % (said, what, exc.message, DRAIN_WORDS[req.drain]))
            return result
        if same_version:
            self._record('restarted', req.version)   # the release itself stays good here
            if req.drain == 'consul':
                self._consul_maintenance(False)
            self._phase('rollback')
            result.update(outcome='rolled_back', version_after=before, failed=True,
                          msg='%s Put the previous files back; %s %s serves again with them.' % (said, req.name, before))
            return result
        self._record('rolled_back', req.version)
        for path in (req.deb(req.version), req.deb(req.version) + '.sha256'):
            if os.path.exists(path):
                os.unlink(path)   # a release that failed here is never a rollback target
        if req.drain == 'consul':
            self._consul_maintenance(False)
        self._phase('rollback')
        result.update(outcome='rolled_back', version_after=before, failed=True,
                      msg='%s Rolled back to %s, which passed its health gate and serves again.' % (said, before))
        return result

    def _spec(self, path: str) -> Dict[str, Any]:
        return next((spec for spec in self.req.files if spec['path'] == path), {'path': path})

    def _restore(self, backups: Dict[str, Optional[bytes]]) -> None:
        changed = [path for path, content in backups.items() if read_file(path) != content]
        for path in changed:
            write_file(self._spec(path), backups[path])
        if any(path.startswith(UNIT_DIRS) for path in changed):
            self.host.systemctl('daemon-reload')

    def _prune(self, before: str) -> List[str]:
        """Keep cache_keep packages: the installed one and the one before always, then the newest."""
        req = self.req
        keep = {os.path.basename(req.deb(req.version)), os.path.basename(req.deb(before))}
        prefix, suffix = req.package_name + '_', '_%s.deb' % req.arch
        others = sorted((entry for entry in os.scandir(req.cache_dir)
                         if entry.name.startswith(prefix) and entry.name.endswith(suffix) and entry.name not in keep),
                        key=lambda entry: entry.stat().st_mtime, reverse=True)
        removed = []
        for entry in others[max(req.cache_keep - 2, 0):]:
            for path in (entry.path, entry.path + '.sha256'):
                if os.path.exists(path):
                    os.unlink(path)
            removed.append(entry.name)
        return removed

    def _consul_maintenance(self, enable: bool) -> None:
        """Consul maintenance of the service on the local agent; on drain, wait until it is out."""
        req = self.req
        url = '%s/v1/agent/service/maintenance/%s?enable=%s&reason=%s' % (
            req.consul_url.rstrip('/'), req.name, 'true' if enable else 'false',
            urllib.parse.quote('goship.deploy: releasing %s %s' % (req.name, req.version)))
        try:
            open_url(url, method='PUT', timeout=10, use_proxy=False).close()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return   # the agent does not know the service (a first install): nothing in rotation
            raise ReleaseError('Consul maintenance for %s at %s failed: %s' % (req.name, req.consul_url, exc))
        except (urllib.error.URLError, OSError) as exc:
            raise ReleaseError('Consul maintenance for %s at %s failed: %s' % (req.name, req.consul_url, exc))
