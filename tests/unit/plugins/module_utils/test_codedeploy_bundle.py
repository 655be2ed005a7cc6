# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for module_utils/codedeploy_bundle.py, codedeploy_hooks.py and codedeploy_go_service.py.

Bundles are extracted with the real ``unzip`` and ``tar`` commands; generated
hook scripts are checked with ``sh -n`` and the ValidateService script is run
against a small HTTP server on 127.0.0.1 (threads in this process).  The
``unzip`` tests are skipped when it is not installed (``apt-get install unzip``).
"""

from __future__ import annotations

import gzip
import http.server
import io
import json
import os
import shlex
import shutil
import stat
import subprocess
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
import yaml

from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_bundle as cb
from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_go_service as go_service
from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_hooks as hooks
from ansible_collections.goship.deploy.plugins.module_utils.appspec import validate
from ansible_collections.goship.deploy.plugins.module_utils.codedeploy_bundle import BundleError

UNZIP = shutil.which('unzip')
TAR = shutil.which('tar')
needs_unzip = pytest.mark.skipif(UNZIP is None, reason='unzip not installed (apt-get install unzip)')
needs_tar = pytest.mark.skipif(TAR is None, reason='tar not installed')

MTIME = 1700000000
APPSPEC = ('version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /opt/app\n'
           'hooks:\n  ApplicationStart:\n    - location: scripts/start.sh\n      timeout: 60\n')
START = b'#!/bin/sh\nset -eu\necho started\n'


def _files(tmp_path):
    binary = tmp_path / 'app-binary'
    binary.write_bytes(b'\x7fELF' + bytes(range(256)) * 64)
    binary.chmod(0o755)
    conf = tmp_path / 'app.conf'
    conf.write_text('listen = :8080\n')
    conf.chmod(0o600)
    return [
        (str(conf), 'app/etc/app.conf', None),          # mode from disk: not executable -> 0644
        (START, 'scripts/start.sh', 0o755),
        (str(binary), 'app/bin/app', None),             # executable on disk -> 0755
        (b'plain data\n', 'app/share/data.txt', '0640'),
    ]


def _clean_env():
    env = {k: v for k, v in os.environ.items() if 'proxy' not in k.lower()}
    env['LC_ALL'] = 'C'
    return env


def _run(cmd, **kw):
    kw.setdefault('timeout', 60)
    return subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(), check=False, **kw)


# --------------------------------------------------------------------------
# Reproducibility and archive details
# --------------------------------------------------------------------------

@pytest.mark.parametrize('fmt', cb.FORMATS)
def test_reproducible(tmp_path, fmt):
    files = _files(tmp_path)
    first = cb.build_bundle(APPSPEC, files, fmt=fmt, mtime=MTIME)
    second = cb.build_bundle(APPSPEC, list(reversed(files)), fmt=fmt, mtime=MTIME)
    assert first == second
    # Disk timestamps do not matter, only the contents.
    for src, _path, _mode in files:
        if isinstance(src, str):
            os.utime(src, (1, 1))
    assert cb.build_bundle(APPSPEC, files, fmt=fmt, mtime=MTIME) == first
    # A different mtime (or different content) gives different bytes.
    assert cb.build_bundle(APPSPEC, files, fmt=fmt, mtime=MTIME + 86400) != first
    assert cb.build_bundle(APPSPEC + '# changed\n', files, fmt=fmt, mtime=MTIME) != first


def test_source_date_epoch(tmp_path, monkeypatch):
    files = _files(tmp_path)
    monkeypatch.setenv('SOURCE_DATE_EPOCH', str(MTIME))
    assert cb.build_bundle(APPSPEC, files, fmt='tgz') == cb.build_bundle(APPSPEC, files, fmt='tgz', mtime=MTIME)
    monkeypatch.delenv('SOURCE_DATE_EPOCH')
    assert cb.build_bundle(APPSPEC, files, fmt='tgz') == cb.build_bundle(APPSPEC, files, fmt='tgz', mtime=0)
    monkeypatch.setenv('SOURCE_DATE_EPOCH', 'yesterday')
    with pytest.raises(BundleError, match='SOURCE_DATE_EPOCH'):
        cb.build_bundle(APPSPEC, files)


def test_zip_details(tmp_path):
    data = cb.build_bundle(APPSPEC, _files(tmp_path), fmt='zip', mtime=MTIME)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        assert names == ['app/', 'app/bin/', 'app/bin/app', 'app/etc/', 'app/etc/app.conf', 'app/share/',
                         'app/share/data.txt', 'appspec.yml', 'scripts/', 'scripts/start.sh']
        modes = {i.filename: i.external_attr >> 16 for i in infos}
        for info in infos:
            assert info.create_system == 3
            assert info.extra == b''
            assert info.date_time == (2023, 11, 14, 22, 13, 20)
            assert info.compress_type == (zipfile.ZIP_STORED if info.is_dir() else zipfile.ZIP_DEFLATED)
        assert modes['app/'] == stat.S_IFDIR | 0o755
        assert modes['app/bin/app'] == stat.S_IFREG | 0o755
        assert modes['app/etc/app.conf'] == stat.S_IFREG | 0o644
        assert modes['app/share/data.txt'] == stat.S_IFREG | 0o640
        assert modes['appspec.yml'] == stat.S_IFREG | 0o644
        assert archive.read('appspec.yml').decode() == APPSPEC
        assert archive.testzip() is None


def test_zip_dates_are_clamped():
    for mtime, expected in ((0, (1980, 1, 1, 0, 0, 0)), (2 ** 33, (2107, 12, 31, 23, 59, 58))):
        data = cb.build_bundle(APPSPEC, [(START, 'scripts/start.sh', 0o755)], fmt='zip', mtime=mtime)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert {i.date_time for i in archive.infolist()} == {expected}


def test_tgz_details(tmp_path):
    data = cb.build_bundle(APPSPEC, _files(tmp_path), fmt='tgz', mtime=MTIME)
    # gzip header: mtime 0, no file name (FLG has no FNAME bit).
    assert data[:3] == b'\x1f\x8b\x08'
    assert data[3] == 0
    assert data[4:8] == b'\0\0\0\0'
    raw = gzip.decompress(data)
    assert b'PaxHeader' not in raw and b'atime' not in raw
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:gz') as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == ['app', 'app/bin', 'app/bin/app', 'app/etc', 'app/etc/app.conf',
                                             'app/share', 'app/share/data.txt', 'appspec.yml', 'scripts',
                                             'scripts/start.sh']
        for member in members:
            assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, 'root', 'root')
            assert member.mtime == MTIME
        by_name = {m.name: m for m in members}
        assert by_name['app'].isdir() and by_name['app'].mode == 0o755
        assert by_name['scripts/start.sh'].mode == 0o755
        assert by_name['app/share/data.txt'].mode == 0o640
        assert archive.extractfile('appspec.yml').read().decode() == APPSPEC


@needs_unzip
def test_extract_with_unzip(tmp_path):
    data = cb.build_bundle(APPSPEC, _files(tmp_path), fmt='zip', mtime=MTIME)
    bundle = tmp_path / 'bundle.zip'
    bundle.write_bytes(data)
    test = _run([UNZIP, '-t', str(bundle)])
    assert test.returncode == 0 and 'No errors detected' in test.stdout, test.stdout + test.stderr
    out = tmp_path / 'out'
    out.mkdir()
    proc = _run([UNZIP, '-q', str(bundle), '-d', str(out)])
    assert proc.returncode == 0, proc.stderr
    _assert_extracted(out, tmp_path)


@needs_tar
@pytest.mark.parametrize('fmt, flags', [('tgz', '-xzf'), ('tar', '-xf')])
def test_extract_with_tar(tmp_path, fmt, flags):
    data = cb.build_bundle(APPSPEC, _files(tmp_path), fmt=fmt, mtime=MTIME)
    bundle = tmp_path / ('bundle.' + fmt)
    bundle.write_bytes(data)
    listing = _run([TAR, '-tvf', str(bundle)])
    assert listing.returncode == 0, listing.stderr
    assert 'root/root' in listing.stdout and 'scripts/start.sh' in listing.stdout
    out = tmp_path / 'out'
    out.mkdir()
    proc = _run([TAR, flags, str(bundle), '-C', str(out), '--no-same-owner', '-p'])
    assert proc.returncode == 0, proc.stderr
    _assert_extracted(out, tmp_path)


def _assert_extracted(out: Path, src: Path):
    assert (out / 'appspec.yml').read_text() == APPSPEC
    assert (out / 'scripts/start.sh').read_bytes() == START
    assert (out / 'app/bin/app').read_bytes() == (src / 'app-binary').read_bytes()
    assert (out / 'app/etc/app.conf').read_text() == 'listen = :8080\n'
    assert stat.S_IMODE((out / 'scripts/start.sh').stat().st_mode) == 0o755
    assert stat.S_IMODE((out / 'app/bin/app').stat().st_mode) == 0o755
    assert stat.S_IMODE((out / 'app/etc/app.conf').stat().st_mode) == 0o644
    assert stat.S_IMODE((out / 'app/share/data.txt').stat().st_mode) == 0o640
    assert int((out / 'appspec.yml').stat().st_mtime) == MTIME


def test_build_errors_are_all_reported(tmp_path):
    with pytest.raises(BundleError) as err:
        cb.build_bundle(APPSPEC, [
            (b'x', '/abs/path', None),
            (b'x', 'a/../b', None),
            (b'x', 'appspec.yml', None),
            (b'x', 'dup.sh', None),
            (b'x', 'dup.sh', None),
            (str(tmp_path / 'missing'), 'missing.txt', None),
            (b'x', 'bad-mode', 'rwx'),
            (b'x', 'conflict', None),
            (b'x', 'conflict/inner', None),
            ('not a tuple',),
        ])
    text = '\n'.join(err.value.problems)
    for needle in ("'/abs/path' must be relative", "'a/../b' must be normalised", 'appspec.yml is written by',
                   "'dup.sh' is listed twice", 'missing.txt: cannot read', 'bad-mode: mode must be octal',
                   "'conflict' is both a file and a directory", 'each file must be (source, path_in_bundle, mode)'):
        assert needle in text, needle
    assert len(err.value.problems) == 8
    with pytest.raises(BundleError, match='fmt must be one of'):
        cb.build_bundle(APPSPEC, [], fmt='rar')
    with pytest.raises(BundleError, match='mtime must be'):
        cb.build_bundle(APPSPEC, [], mtime=-1)


# --------------------------------------------------------------------------
# Reading and validating bundles
# --------------------------------------------------------------------------

@pytest.mark.parametrize('fmt', cb.FORMATS)
def test_read_and_validate_bundle(tmp_path, fmt):
    data = cb.build_bundle(APPSPEC, _files(tmp_path), fmt=fmt, mtime=MTIME)
    contents = cb.read_bundle(data)
    assert contents.fmt == fmt and contents.appspec_text == APPSPEC and not contents.problems
    mode, head = contents.files['scripts/start.sh']
    assert stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o755 and head == START
    result = cb.validate_bundle(data)
    assert result.ok and result.warnings == [], result.format()


def _bundle_with(start_bytes, mode, fmt='zip', location='scripts/start.sh'):
    appspec = APPSPEC.replace('scripts/start.sh', location)
    return cb.build_bundle(appspec, [(start_bytes, 'scripts/start.sh', mode), (b'x', 'app/x', None)],
                           fmt=fmt, mtime=MTIME)


@pytest.mark.parametrize('fmt', cb.FORMATS)
def test_validator_on_bundle_contents(fmt):
    missing = cb.validate_bundle(_bundle_with(START, 0o755, fmt, location='scripts/run.sh'))
    assert [p.path for p in missing.problems] == ['hooks.ApplicationStart[0].location']
    assert "'scripts/run.sh' is not in the bundle" in missing.problems[0].message

    noexec = cb.validate_bundle(_bundle_with(START, 0o644, fmt))
    assert noexec.ok
    assert [w.path for w in noexec.warnings] == ['hooks.ApplicationStart[0].location']
    assert 'is not executable (mode 0644)' in noexec.warnings[0].message

    crlf = cb.validate_bundle(_bundle_with(b'#!/bin/bash\r\necho hi\r\n', 0o755, fmt))
    assert [p.path for p in crlf.problems] == ['hooks.ApplicationStart[0].location']
    assert 'CRLF' in crlf.problems[0].message and "'/bin/bash\\r'" in crlf.problems[0].message

    missing_source = cb.validate_bundle(cb.build_bundle(APPSPEC, [(START, 'scripts/start.sh', 0o755)], fmt=fmt))
    assert [p.path for p in missing_source.problems] == ['files[0].source']


def test_bundle_without_appspec_at_root():
    nested = io.BytesIO()
    with zipfile.ZipFile(nested, 'w') as archive:
        archive.writestr('myapp/appspec.yml', APPSPEC)
        archive.writestr('myapp/scripts/start.sh', START)
    result = cb.validate_bundle(nested.getvalue())
    assert not result.ok and result.problems[0].path == ''
    assert 'no appspec.yml at its root: found myapp/appspec.yml' in result.problems[0].message

    yaml_name = cb.build_bundle(APPSPEC, [], fmt='tgz')
    renamed = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(yaml_name), mode='r:gz') as src, \
            tarfile.open(fileobj=renamed, mode='w') as dst:
        member = src.getmember('appspec.yml')
        content = src.extractfile(member).read()
        member.name = 'appspec.yaml'
        dst.addfile(member, io.BytesIO(content))
    result = cb.validate_bundle(renamed.getvalue())
    assert 'appspec.yaml is only read with an explicit option' in result.problems[0].message

    for garbage in (b'', b'not an archive', b'PK\x03\x04broken'):
        result = cb.validate_bundle(garbage)
        assert not result.ok and result.problems[0].path == ''


def test_zip_without_unix_modes_skips_exec_check():
    data = io.BytesIO()
    with zipfile.ZipFile(data, 'w') as archive:
        for name, content in (('appspec.yml', APPSPEC.encode()), ('scripts/start.sh', START), ('app/x', b'x')):
            info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
            info.create_system = 0   # MS-DOS: no Unix mode
            archive.writestr(info, content)
    result = cb.validate_bundle(data.getvalue())
    assert result.ok and result.warnings == [], result.format()


# --------------------------------------------------------------------------
# appspec.yml from structured input
# --------------------------------------------------------------------------

STRUCTURE = dict(
    files=[{'source': 'app', 'destination': '/opt/app'},
           {'destination': '/etc/app', 'source': 'config'}],
    permissions=[{'object': '/opt/app', 'owner': 'app', 'group': 'app', 'mode': 0o750,
                  'type': ['directory'], 'pattern': None}],
    hooks={'ValidateService': [{'location': 'scripts/validate.sh', 'timeout': 150}],
           'ApplicationStop': [{'timeout': 60, 'location': 'scripts/stop.sh'}],
           'AfterInstall': [{'location': 'scripts/install.sh', 'timeout': 600},
                            {'location': 'scripts/post.sh', 'runas': 'app', 'timeout': 30}],
           'BeforeInstall': 'scripts/prepare.sh'},   # a bare location is a one-script list
    file_exists_behavior='OVERWRITE',
)


def test_appspec_from_structure():
    text = cb.appspec_from_structure(**STRUCTURE)
    assert text.startswith('version: 0.0\nos: linux\n')
    parsed = yaml.safe_load(text)
    assert parsed['version'] == 0.0 and isinstance(parsed['version'], float)
    assert parsed['files'] == [{'source': 'app', 'destination': '/opt/app'},
                               {'source': 'config', 'destination': '/etc/app'}]
    assert parsed['permissions'] == [{'object': '/opt/app', 'owner': 'app', 'group': 'app', 'mode': '750',
                                      'type': ['directory']}]
    # Events in lifecycle order, whatever the input order.
    assert list(parsed['hooks']) == ['ApplicationStop', 'BeforeInstall', 'AfterInstall', 'ValidateService']
    assert parsed['hooks']['BeforeInstall'] == [{'location': 'scripts/prepare.sh'}]
    assert parsed['hooks']['AfterInstall'] == [{'location': 'scripts/install.sh', 'timeout': 600},
                                               {'location': 'scripts/post.sh', 'timeout': 30, 'runas': 'app'}]
    assert parsed['file_exists_behavior'] == 'OVERWRITE'
    result = validate(text)
    assert result.ok, result.format()
    assert [w.path for w in result.warnings] == ['hooks.ApplicationStop']


def test_appspec_from_structure_is_deterministic():
    text = cb.appspec_from_structure(**STRUCTURE)
    shuffled = dict(
        file_exists_behavior=STRUCTURE['file_exists_behavior'],
        hooks=dict(reversed(list(STRUCTURE['hooks'].items()))),
        permissions=[dict(reversed(list(p.items()))) for p in STRUCTURE['permissions']],
        files=[dict(reversed(list(f.items()))) for f in STRUCTURE['files']],
    )
    assert cb.appspec_from_structure(**shuffled) == text
    assert cb.appspec_from_structure() == 'version: 0.0\nos: linux\n'


@pytest.mark.parametrize('value', ['yes', 'no', 'on', 'null', '~', '0755', '1.0', '2024-01-01', 'a: b',
                                   '- x', '#comment', "it's", 'say "hi"', ' padded ', 'line\nbreak', '*star',
                                   '&amp', '!tag', '%p', '@at', '`tick`', 'ünïcode', '', 'true', '0x1F', '1e3'])
def test_structure_strings_stay_strings(value):
    text = cb.appspec_from_structure(files=[{'source': value, 'destination': '/opt/x'}])
    assert yaml.safe_load(text)['files'][0]['source'] == value


def test_structure_renders_invalid_input_for_the_validator():
    text = cb.appspec_from_structure(hooks={'Install': [{'location': 'a.sh', 'timeout': '30s', 'extra': 1}]})
    paths = sorted(p.path for p in validate(text).problems)
    assert paths == ['hooks.Install', 'hooks.Install[0].extra', 'hooks.Install[0].timeout']


# --------------------------------------------------------------------------
# The Go service bundle and its hook scripts
# --------------------------------------------------------------------------

@pytest.fixture
def go_inputs(tmp_path):
    deb = tmp_path / 'hello-svc_1.214_amd64.deb'
    deb.write_bytes(b'!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n')
    binary = tmp_path / 'hello-svc'
    binary.write_bytes(b'\x7fELF\x02\x01\x01' + b'\0' * 100)
    migrations = tmp_path / 'migrations'
    migrations.mkdir()
    (migrations / '0001_create.sql').write_text('CREATE TABLE IF NOT EXISTS t (id int);\n')
    (migrations / '0002_seed.sql').write_text('INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING;\n')
    (migrations / 'README.md').write_text('not a migration\n')
    unit = tmp_path / 'hello-svc.service'
    unit.write_text('[Unit]\nDescription=hello\n[Service]\nExecStart=/usr/local/bin/hello-svc\n')
    return {'deb': deb, 'binary': binary, 'migrations': migrations, 'unit': unit}


HEALTH = 'http://127.0.0.1:8080/healthz'


@pytest.mark.parametrize('fmt', cb.FORMATS)
def test_go_service_bundle_deb(go_inputs, fmt):
    built = go_service.go_service_bundle('hello-svc', '1.214', go_inputs['deb'], HEALTH, fmt=fmt, mtime=MTIME,
                                         migrations_dir=str(go_inputs['migrations']))
    assert built.entries == [
        'appspec.yml', 'migrations', 'migrations/0001_create.sql', 'migrations/0002_seed.sql', 'pkg',
        'pkg/hello-svc_1.214_amd64.deb', 'scripts', 'scripts/install.sh', 'scripts/migrate.sh',
        'scripts/start.sh', 'scripts/stop.sh', 'scripts/validate.sh']
    spec = yaml.safe_load(built.appspec)
    assert spec['hooks'] == {
        'ApplicationStop': [{'location': 'scripts/stop.sh', 'timeout': 120}],
        'AfterInstall': [{'location': 'scripts/migrate.sh', 'timeout': 900},
                         {'location': 'scripts/install.sh', 'timeout': 600}],
        'ApplicationStart': [{'location': 'scripts/start.sh', 'timeout': 120}],
        'ValidateService': [{'location': 'scripts/validate.sh', 'timeout': 150}],
    }
    assert 'files' not in spec and 'file_exists_behavior' not in spec
    # The validator accepts it; the only warning is the ApplicationStop one.
    result = cb.validate_bundle(built.data, os_family='linux')
    assert result.ok, result.format()
    assert [w.path for w in built.warnings] == [w.path for w in result.warnings] == ['hooks.ApplicationStop']
    # Reproducible.
    again = go_service.go_service_bundle('hello-svc', '1.214', go_inputs['deb'], HEALTH, fmt=fmt, mtime=MTIME,
                                         migrations_dir=str(go_inputs['migrations']))
    assert again.data == built.data and again.sha256 == built.sha256


def test_go_service_bundle_binary(go_inputs, tmp_path):
    built = go_service.go_service_bundle('hello-svc', '1.214', go_inputs['binary'], HEALTH, fmt='zip', mtime=MTIME,
                                         unit_file=str(go_inputs['unit']), binary_dir='/opt/bin')
    spec = yaml.safe_load(built.appspec)
    assert spec['files'] == [{'source': 'bin/hello-svc', 'destination': '/opt/bin'},
                             {'source': 'systemd/hello-svc.service', 'destination': '/etc/systemd/system'}]
    assert spec['permissions'] == [{'object': '/opt/bin/hello-svc', 'owner': 'root', 'group': 'root',
                                    'mode': '755', 'type': ['file']}]
    assert spec['file_exists_behavior'] == 'OVERWRITE'
    assert list(spec['hooks']) == ['ApplicationStop', 'ApplicationStart', 'ValidateService']
    assert cb.validate_bundle(built.data).ok
    with zipfile.ZipFile(io.BytesIO(built.data)) as archive:
        assert archive.getinfo('bin/hello-svc').external_attr >> 16 == stat.S_IFREG | 0o755
        assert archive.read('bin/hello-svc') == go_inputs['binary'].read_bytes()


def test_go_service_bundle_bad_parameters(go_inputs, tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(BundleError) as err:
        go_service.go_service_layout('hello svc', '1.0 beta', tmp_path / 'nope.deb', "http://x/'", status_url='ftp://x',
                                     version_key='a.b', migrations_dir=str(empty), migrations_table='Drop Table',
                                     pg_env_file='relative.env', binary_dir='bin', timeouts={'start': 0, 'bogus': 5},
                                     validate_timeout=3590)
    text = '\n'.join(err.value.problems)
    for needle in ("service 'hello svc'", "version '1.0 beta'", 'health_url', 'status_url', 'version_key',
                   'migrations_table', 'pg_env_file', 'binary_dir', 'timeouts.start', "unknown timeouts key 'bogus'",
                   'timeouts.validate', 'is not a file', 'has no *.sql files'):
        assert needle in text, needle
    with pytest.raises(BundleError, match='a .deb carries its own systemd unit'):
        go_service.go_service_layout('hello-svc', '1.0', go_inputs['deb'], HEALTH, unit_file=str(go_inputs['unit']))


def _scripts(go_inputs, **options):
    built = go_service.go_service_bundle('hello-svc', '1.214', go_inputs['deb'], HEALTH, fmt='tgz', mtime=MTIME,
                                         migrations_dir=str(go_inputs['migrations']), **options)
    scripts = {}
    with tarfile.open(fileobj=io.BytesIO(built.data), mode='r:gz') as archive:
        for member in archive.getmembers():
            if member.name.startswith('scripts/'):
                scripts[member.name] = (member.mode, archive.extractfile(member).read())
    return scripts


def test_generated_scripts_are_posix_sh(go_inputs, tmp_path):
    scripts = _scripts(go_inputs)
    assert sorted(scripts) == ['scripts/install.sh', 'scripts/migrate.sh', 'scripts/start.sh',
                               'scripts/stop.sh', 'scripts/validate.sh']
    shells = [s for s in ('sh', 'dash', 'bash') if shutil.which(s)]
    for name, (mode, body) in scripts.items():
        assert mode == 0o755, name
        assert body.startswith(b'#!/bin/sh\n'), name
        assert b'\nset -eu\n' in body, name
        assert b'\r' not in body, name
        assert b'@@' not in body, name + ': unrendered placeholder'
        path = tmp_path / name.replace('/', '_')
        path.write_bytes(body)
        for shell in shells:
            args = [shell, '--posix', '-n', str(path)] if shell == 'bash' else [shell, '-n', str(path)]
            proc = _run(args)
            assert proc.returncode == 0, '%s -n %s: %s' % (shell, name, proc.stderr)


def test_hook_values_are_shell_quoted(tmp_path):
    marker = tmp_path / 'pwned'
    evil = "x'; touch %s; echo '$(touch %s)`touch %s`" % (marker, marker, marker)
    text = hooks.render_hook_script('validate', service=evil, health_url='http://127.0.0.1:9/healthz',
                                    status_url='http://127.0.0.1:9/status', version_key='version',
                                    expected_version=evil, timeout=1, interval=1)
    assert 'EXPECTED_VERSION=%s\n' % shlex.quote(evil) in text
    script = tmp_path / 'validate.sh'
    script.write_text(text)
    proc = _run(['sh', str(script)], timeout=60)
    assert proc.returncode == 1
    assert not marker.exists()


def test_render_hook_script_errors():
    with pytest.raises(BundleError, match="unknown hook script 'restart'"):
        hooks.render_hook_script('restart', service='x')
    with pytest.raises(BundleError, match="needs the parameter stop_timeout"):
        hooks.render_hook_script('stop', service='x')


def test_stop_script_never_fails_without_systemd(go_inputs, tmp_path):
    body = _scripts(go_inputs)['scripts/stop.sh'][1]
    script = tmp_path / 'stop.sh'
    script.write_bytes(body)
    proc = subprocess.run(['/bin/sh', str(script)], capture_output=True, text=True, timeout=60,
                          env={'PATH': str(tmp_path / 'empty-path')}, check=False)
    assert proc.returncode == 0, proc.stderr
    assert 'systemctl not found; nothing to stop' in proc.stdout


def test_install_and_migrate_fail_clearly_outside_a_bundle(go_inputs, tmp_path):
    scripts = _scripts(go_inputs, pg_env_file=str(tmp_path / 'no-such.env'))
    scripts_dir = tmp_path / 'bundle' / 'scripts'
    scripts_dir.mkdir(parents=True)
    for name in ('install', 'migrate'):
        (scripts_dir / (name + '.sh')).write_bytes(scripts['scripts/%s.sh' % name][1])
    install = _run(['sh', str(scripts_dir / 'install.sh')])
    assert install.returncode == 1
    assert 'pkg/hello-svc_1.214_amd64.deb is missing from the bundle' in install.stderr
    migrate = _run(['sh', str(scripts_dir / 'migrate.sh')])
    assert migrate.returncode == 1
    assert 'migrations directory' in migrate.stderr and 'not found' in migrate.stderr
    (tmp_path / 'bundle' / 'migrations').mkdir()
    if shutil.which('psql'):
        migrate = _run(['sh', str(scripts_dir / 'migrate.sh')])
        assert migrate.returncode == 1
        assert 'no-such.env not found or not readable' in migrate.stderr


# --------------------------------------------------------------------------
# validate.sh against a real HTTP server on 127.0.0.1
# --------------------------------------------------------------------------

class _Service:
    """A tiny service: /healthz answers health_code, /status reports version (JSON or plain)."""

    def __init__(self):
        self.version = '1.214'
        self.health_code = 200
        self.plain = False
        self.unhealthy_for = 0     # answer 503 to the first N health checks
        self.requests = 0
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                service.requests += 1
                if self.path == '/healthz':
                    code = service.health_code
                    if service.unhealthy_for > 0:
                        service.unhealthy_for -= 1
                        code = 503
                    body = b'ok' if code == 200 else b'unhealthy'
                elif self.path == '/status':
                    code = 200
                    if service.plain:
                        body = (service.version + '\n').encode()
                    else:
                        body = json.dumps({'service': 'hello-svc', 'version': service.version,
                                           'uptime_s': 1.5}, indent=1).encode()
                else:
                    code, body = 404, b'not found'
                self.send_response(code)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service():
    svc = _Service()
    yield svc
    svc.close()


def _validate_script(tmp_path, port, expected='1.214', version_key='version', timeout=3, interval=1):
    text = hooks.render_hook_script(
        'validate', service='hello-svc', health_url='http://127.0.0.1:%d/healthz' % port,
        status_url='http://127.0.0.1:%d/status' % port, version_key=version_key,
        expected_version=expected, timeout=timeout, interval=interval)
    path = tmp_path / 'validate.sh'
    path.write_text(text)
    path.chmod(0o755)
    return path


needs_http_client = pytest.mark.skipif(not (shutil.which('curl') or shutil.which('wget')),
                                       reason='validate.sh needs curl or wget')


@needs_http_client
def test_validate_passes_on_matching_version(service, tmp_path):
    proc = _run([str(_validate_script(tmp_path, service.port))])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'hello-svc is healthy and reports version 1.214 (attempt 1)' in proc.stdout


@needs_http_client
def test_validate_waits_until_healthy(service, tmp_path):
    service.unhealthy_for = 2
    proc = _run([str(_validate_script(tmp_path, service.port, timeout=20))])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '(attempt 3)' in proc.stdout


@needs_http_client
def test_validate_fails_on_version_mismatch(service, tmp_path):
    service.version = '1.213'
    proc = _run([str(_validate_script(tmp_path, service.port, timeout=2, interval=1))])
    assert proc.returncode == 1
    assert "reports version '1.213', expected '1.214'" in proc.stderr
    assert 'failed validation after' in proc.stderr


@needs_http_client
def test_validate_fails_when_unhealthy(service, tmp_path):
    service.health_code = 503
    proc = _run([str(_validate_script(tmp_path, service.port, timeout=2, interval=1))])
    assert proc.returncode == 1
    assert '/healthz answered 503' in proc.stderr


@needs_http_client
def test_validate_plain_body_version(service, tmp_path):
    service.plain = True
    proc = _run([str(_validate_script(tmp_path, service.port, version_key=''))])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    service.version = '2.0'
    proc = _run([str(_validate_script(tmp_path, service.port, version_key='', timeout=1))])
    assert proc.returncode == 1 and "reports version '2.0'" in proc.stderr


@needs_http_client
def test_validate_numeric_json_version(service, tmp_path):
    service.version = 2.5      # {"version": 2.5}
    proc = _run([str(_validate_script(tmp_path, service.port, expected='2.5'))])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_http_client
def test_validate_fails_when_nothing_listens(service, tmp_path):
    port = service.port
    service.close()
    proc = _run([str(_validate_script(tmp_path, port, timeout=1, interval=1))])
    assert proc.returncode == 1
    assert '/healthz answered 000' in proc.stderr
