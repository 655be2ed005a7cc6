# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for the goship.deploy.deb_build module.

The module is run for real through ``ansible-playbook`` on localhost (connection
local, the current Python as interpreter), with ANSIBLE_COLLECTIONS_PATH pointing
at the collection.  Each playbook registers the task result and writes it to a
JSON file, so tests assert on the structured result *and* on the raw output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ansible_collections.goship.deploy.plugins.module_utils.debian_package as dp

ANSIBLE_PLAYBOOK = Path(sys.executable).parent / 'ansible-playbook'
DPKG_DEB = shutil.which('dpkg-deb')

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason='ansible-playbook not next to python')


def collections_root():
    """Directory containing ansible_collections/goship/deploy (the import path in use)."""
    here = Path(dp.__file__).absolute()
    candidate = here.parents[5]
    if (candidate / 'ansible_collections' / 'goship' / 'deploy').is_dir():
        return candidate
    return Path(__file__).resolve().parents[4] / '.collections'


UNIT = ('[Unit]\nDescription=goship agent\n\n[Service]\nExecStart=/usr/bin/goship-agent\n\n'
        '[Install]\nWantedBy=multi-user.target\n')
BAD_UNIT = '[Unit]\nDescription=broken\n\n[Service]\nExecStart=relative/path\n'


@pytest.fixture
def work(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    (src / 'agent').write_bytes(b'#!/bin/sh\necho agent\n')
    (src / 'agent.yml').write_text('listen: 8080\n')
    (src / 'goship-agent.service').write_text(UNIT)
    (src / 'postinst.sh').write_text('echo "configured $1"\n')
    (tmp_path / 'out').mkdir()
    return tmp_path


def base_args(work, **overrides):
    args = {
        'dest': str(work / 'out' / 'goship-agent.deb'),
        'name': 'goship-agent',
        'version': '1.214-1',
        'architecture': 'arm64',
        'maintainer': 'Jane Doe <jane@example.com>',
        'description': 'goship agent\nRuns on every node.',
        'depends': ['libc6 (>= 2.34)'],
        'files': [
            {'src': str(work / 'src' / 'agent'), 'dest': '/usr/bin/goship-agent', 'mode': '0755'},
            {'src': str(work / 'src' / 'agent.yml'), 'dest': '/etc/goship/agent.yml'},
        ],
        'mtime': 1700000000,
    }
    args.update(overrides)
    return args


RECORDER = """
import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'record_results'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.results = {}

    def _record(self, result, failed):
        data = getattr(result, 'result', None)
        if data is None:
            data = result._result
        # ansible-core 2.19 keeps the failed flag out of the result mapping.
        data = dict(data, failed=failed)
        self.results[result._task.get_name()] = data
        with open(os.environ['RECORD_RESULTS_FILE'], 'w') as handle:
            json.dump(self.results, handle, default=str)

    def v2_runner_on_ok(self, result, **kwargs):
        self._record(result, False)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._record(result, True)
"""


def run_tasks(work, tasks, check=False, diff=False):
    """Run deb_build tasks ``[(name, args), ...]`` in one playbook.

    Returns ({task name: result}, combined stdout+stderr, returncode).  Results
    are captured by a small callback plugin written next to the playbook.
    """
    results_file = work / 'results.json'
    if results_file.exists():
        results_file.unlink()
    plugin_dir = work / 'callback_plugins'
    plugin_dir.mkdir(exist_ok=True)
    (plugin_dir / 'record_results.py').write_text(RECORDER)
    playbook = [{
        'hosts': 'localhost',
        'gather_facts': False,
        'tasks': [{'name': name, 'goship.deploy.deb_build': args, 'ignore_errors': True}
                  for name, args in tasks],
    }]
    (work / 'playbook.yml').write_text(json.dumps(playbook))
    cmd = [str(ANSIBLE_PLAYBOOK), '-i', 'localhost,', '-c', 'local',
           '-e', 'ansible_python_interpreter=%s' % sys.executable, str(work / 'playbook.yml')]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    environ = dict(os.environ)
    environ.pop('ANSIBLE_CONFIG', None)
    environ.update({
        'ANSIBLE_COLLECTIONS_PATH': str(collections_root()),
        'ANSIBLE_CALLBACK_PLUGINS': str(plugin_dir),
        'ANSIBLE_CALLBACKS_ENABLED': 'record_results',
        'RECORD_RESULTS_FILE': str(results_file),
        'ANSIBLE_HOME': str(work / '.ansible'),
        'ANSIBLE_LOCAL_TEMP': str(work / '.ansible' / 'tmp'),
        'ANSIBLE_REMOTE_TEMP': str(work / '.ansible' / 'remote'),
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': '0',
        'ANSIBLE_RETRY_FILES_ENABLED': '0',
        'ANSIBLE_STDOUT_CALLBACK': 'default',
    })
    proc = subprocess.run(cmd, cwd=str(work), env=environ, capture_output=True, text=True, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    assert results_file.exists(), output
    results = json.loads(results_file.read_text())
    assert sorted(results) == sorted(name for name, _args in tasks), output
    return results, output, proc.returncode


def run_module(work, args, check=False, diff=False):
    """Run a single deb_build task; return (result, output, returncode)."""
    results, output, rc = run_tasks(work, [('build', args)], check=check, diff=diff)
    return results['build'], output, rc


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_first_run_changes_second_run_does_not_touch_file(work):
    args = base_args(work)
    dest = Path(args['dest'])
    first, output, rc = run_module(work, args)
    assert rc == 0, output
    assert first['changed'] is True
    assert dest.is_file()
    assert first['sha256'] == sha256(dest)
    assert first['size'] == dest.stat().st_size
    assert (dest.stat().st_mode & 0o777) == 0o644
    assert first['package'] == 'goship-agent'
    assert first['version'] == '1.214-1'
    assert first['architecture'] == 'arm64'
    assert first['control']['Depends'] == 'libc6 (>= 2.34)'
    assert first['conffiles'] == ['/etc/goship/agent.yml']
    assert {'path': './usr/bin/goship-agent', 'type': 'file', 'mode': '0755', 'size': 21,
            'owner': 'root', 'group': 'root'} in first['contents']
    assert first['units_verified'] is False   # no units given
    assert not [p for p in dest.parent.iterdir() if p.name != dest.name], 'temporary file left behind'

    # Make any rewrite detectable: an old mtime and a known inode.
    os.utime(dest, (1000000000, 1000000000))
    inode = dest.stat().st_ino
    second, output, rc = run_module(work, args)
    assert rc == 0, output
    assert second['changed'] is False
    assert second['sha256'] == first['sha256']
    assert dest.stat().st_mtime == 1000000000
    assert dest.stat().st_ino == inode

    # Same bytes, wrong mode: only the mode is fixed.
    dest.chmod(0o600)
    third, output, rc = run_module(work, args)
    assert rc == 0, output
    assert third['changed'] is True
    assert (dest.stat().st_mode & 0o777) == 0o644
    assert dest.stat().st_mtime == 1000000000
    assert dest.stat().st_ino == inode

    if DPKG_DEB:
        fields = subprocess.run([DPKG_DEB, '--field', str(dest), 'Package', 'Version', 'Architecture'],
                                check=True, capture_output=True, text=True).stdout
        assert fields == 'Package: goship-agent\nVersion: 1.214-1\nArchitecture: arm64\n'


def test_check_mode_writes_nothing(work):
    args = base_args(work)
    spec = dp.PackageSpec.from_dict(args)
    expected = dp.build(spec, environ={})
    # A second destination that already holds exactly the bytes the module would write.
    existing = work / 'out' / 'existing.deb'
    existing.write_bytes(expected)
    existing.chmod(0o644)
    os.utime(existing, (1000000000, 1000000000))
    results, output, rc = run_tasks(work, [('new', args), ('same', dict(args, dest=str(existing))),
                                           ('bad', dict(args, version='1.0-'))], check=True)
    assert rc == 0, output   # failures are ignored by the playbook; check them below
    assert results['new']['changed'] is True
    assert results['new']['sha256'] == hashlib.sha256(expected).hexdigest()
    assert results['same']['changed'] is False
    assert results['bad']['failed'] is True and "revision after the last '-' is empty" in results['bad']['msg']
    assert [p.name for p in (work / 'out').iterdir()] == ['existing.deb']
    assert existing.stat().st_mtime == 1000000000


def test_failures_are_clean(work):
    """Validation and OS errors: one clear message, nothing written, never a traceback."""
    invalid = base_args(work, version='1.2 3', name='Bad_Name', architecture='x86_64')
    invalid['files'].append({'src': str(work / 'src' / 'missing'), 'dest': 'usr/bin/x'})
    (work / 'afile').write_text('')
    tasks = [
        ('invalid', invalid),
        ('bad version', base_args(work, version='v1')),
        ('empty version', base_args(work, version='')),
        ('bad maintainer', base_args(work, maintainer='jane@example.com')),
        ('missing dest dir', base_args(work, dest=str(work / 'nope' / 'x.deb'))),
        ('dest parent is a file', base_args(work, dest=str(work / 'afile' / 'x.deb'))),
        ('src and content', base_args(work, scripts={
            'postinst': {'src': str(work / 'src' / 'postinst.sh'), 'content': 'x'}})),
        ('unreadable script src', base_args(work, scripts={'postinst': {'src': str(work / 'src')}})),
        ('dest is a directory', base_args(work, dest=str(work / 'src'))),
    ]
    results, output, _rc = run_tasks(work, tasks)
    assert 'Traceback' not in output
    assert all(r['failed'] is True for r in results.values()), results
    assert list((work / 'out').iterdir()) == []

    msg = results['invalid']['msg']
    assert "version '1.2 3' is invalid: contains whitespace" in msg
    assert "'2:1.0~rc1'" in msg
    assert "package name 'Bad_Name' is invalid" in msg
    assert "architecture 'x86_64' is not supported" in msg
    assert 'does not exist' in msg and 'must be an absolute path' in msg
    assert msg.count('; ') >= 4
    assert results['invalid']['problems'] == msg.split('; ')

    assert "version 'v1' is invalid: upstream version 'v1' must start with a digit" in results['bad version']['msg']
    assert 'version must not be empty' in results['empty version']['msg']
    assert "must look like 'Name <email>'" in results['bad maintainer']['msg']
    missing = results['missing dest dir']['msg']
    assert str(work / 'nope' / 'x.deb') in missing and 'does not exist' in missing
    assert str(work / 'afile') in results['dest parent is a file']['msg']
    assert 'mutually exclusive' in results['src and content']['msg']
    unreadable = results['unreadable script src']['msg']
    assert unreadable == 'cannot read scripts.postinst.src %s: Is a directory' % (work / 'src')
    assert results['dest is a directory']['msg'] == 'cannot write %s: Is a directory' % (work / 'src')
    # One except clause in main(): every failure carries the same keys, path always the dest.
    for name, args in tasks:
        if name == 'src and content':   # refused by AnsibleModule's argument checks, before main's try
            continue
        assert results[name]['path'] == args['dest'], name
        assert results[name]['changed'] is False and results[name]['units_verified'] is False, name


def test_diff_mode_shows_control_change(work):
    results, output, rc = run_tasks(work, [('v1', base_args(work)),
                                           ('v2', base_args(work, version='1.215-1'))], diff=True)
    assert rc == 0, output
    first, second = results['v1'], results['v2']
    assert first['changed'] is True and second['changed'] is True
    assert first['diff']['before'] == ''
    assert 'Version: 1.214-1\n' in first['diff']['after']
    assert 'Version: 1.214-1\n' in second['diff']['before']
    assert 'Version: 1.215-1\n' in second['diff']['after']
    assert '+Version: 1.214-1' in output
    assert '-Version: 1.214-1' in output and '+Version: 1.215-1' in output
    assert 'Traceback' not in output


def systemd_analyze_verify_works(tmp_path):
    tool = shutil.which('systemd-analyze')
    if not tool:
        return False
    unit = tmp_path / 'probe.service'
    unit.write_text('[Unit]\nDescription=probe\n[Service]\nType=oneshot\nExecStart=/bin/sh -c true\n')
    try:
        return subprocess.run([tool, 'verify', '--man=no', str(unit)], capture_output=True, check=False,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_scripts_from_src_and_systemd_units(work):
    args = base_args(work)
    args['files'].append({'src': str(work / 'src' / 'goship-agent.service'),
                          'dest': '/lib/systemd/system/goship-agent.service'})
    args['systemd_units'] = [{'name': 'goship-agent.service'}]
    args['scripts'] = {'postinst': {'src': str(work / 'src' / 'postinst.sh')},
                       'prerm': {'content': 'echo bye'}}
    result, output, rc = run_module(work, args)
    assert rc == 0, output
    assert result['scripts'] == ['postinst', 'postrm', 'prerm']
    assert result['units_verified'] is systemd_analyze_verify_works(work)
    if DPKG_DEB:
        control = work / 'control'
        subprocess.run([DPKG_DEB, '-e', args['dest'], str(control)], check=True)
        postinst = (control / 'postinst').read_text()
        assert postinst.index('echo "configured $1"') < postinst.index("deb-systemd-helper enable 'goship-agent.service'")
        assert "deb-systemd-invoke stop 'goship-agent.service'" in (control / 'prerm').read_text()


def test_unit_verification_failure_and_opt_out(work):
    if not systemd_analyze_verify_works(work):
        pytest.skip('systemd-analyze verify cannot run here')
    (work / 'src' / 'broken.service').write_text(BAD_UNIT)
    args = base_args(work)
    args['files'].append({'src': str(work / 'src' / 'broken.service'), 'dest': '/lib/systemd/system/broken.service'})
    args['systemd_units'] = [{'name': 'broken.service'}]
    unverified = dict(args, verify_units=False, dest=str(work / 'out' / 'unverified.deb'))
    results, output, _rc = run_tasks(work, [('verify', args), ('no verify', unverified)])
    assert 'Traceback' not in output
    failed = results['verify']
    assert failed['failed'] is True
    assert 'systemd-analyze verify broken.service failed' in failed['msg']
    assert 'relative/path' in failed['msg']
    assert not Path(args['dest']).exists()
    assert results['no verify']['changed'] is True
    assert results['no verify']['units_verified'] is False
