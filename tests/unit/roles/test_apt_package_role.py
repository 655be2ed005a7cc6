# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""goship.deploy.apt_package: preflight, and every install method in check mode on this machine.

Like test_telegraf_role.py, the role runs for real (``ansible-playbook`` from the repository root so
``goship.deploy.apt_package`` resolves to this checkout) in ``--check --diff`` against an inventory
whose hosts are all this machine (connection local), one host per case, in ONE playbook run: it must
change nothing (/etc/apt, the dpkg database, no keyring, no source, no package cache) and only talk
to a loopback HTTP server (key and .deb URLs) and a loopback moto S3 server (the .deb in S3).

Two real .debs are built with dpkg-deb (goship-test-main depends on goship-test-dep) so apt's
check mode really looks at them: installed in order, the dependency first, check mode says the
second one needs the first; alone, goship-test-main fails on its missing dependency.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from role_runner import ansible_env

REPO = Path(__file__).resolve().parents[3]
ROLE = REPO / 'roles' / 'apt_package'
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / 'ansible-playbook'
DPKG_DEB = shutil.which('dpkg-deb')
SYSTEM_PYTHON = '/usr/bin/python3'

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason='ansible-playbook not next to python')

NAME = 'goship-test-apt-package'
KEYRING = f'/etc/apt/keyrings/{NAME}.asc'
WATCHED = [KEYRING, f'/etc/apt/sources.list.d/{NAME}.sources', '/var/cache/goship/goship-test-url',
           '/var/cache/goship/goship-test-s3']

UNSET = object()  # a variable left out of the host's variables

REPOSITORY = {
    'name': NAME,
    'key_url': 'http://127.0.0.1:9/never-asked.asc',
    'key_checksum': None,
    'keyring': KEYRING,
    'uris': ['https://mirror.example.invalid/debian'],
    'suites': ['bookworm'],
    'components': ['main'],
}

# name -> (role variables, fragments the failure message must contain). Preflight stops them all
# before anything runs: no host of these gets past the role's first tasks.
FAILING = {
    # (the argument spec's apt_package_deb_dir default names it, so Ansible says so before "missing")
    'name_unset': ({'apt_package_name': UNSET}, ["'apt_package_name' is undefined"]),
    'name_null': ({'apt_package_name': None}, ['apt_package_name must be a Debian package name', 'got null']),
    'bad_name': ({'apt_package_name': 'Consul!'}, ['apt_package_name must be a Debian package name', '"Consul!"']),
    'bad_method': ({'apt_package_method': 'pip'}, ['apt_package_method', 'pip']),
    'repository_missing': ({}, ['needs apt_package_repository', 'apt_package_repository must be a dict, got null.']),
    'repository_relative_keyring': ({'apt_package_repository': {**REPOSITORY, 'keyring': 'goship.asc'}},
                                    ['keyring must be an absolute path ending in .asc or .gpg, got "goship.asc"']),
    'repository_bad_fields': ({'apt_package_repository': {**REPOSITORY, 'key_url': 'ftp://example.com/k', 'uris': [],
                                                          'suites': ['a b']}},
                              ['key_url must be an http(s) URL, got "ftp://example.com/k"',
                               'uris must be a non-empty list of http(s) URLs, got []',
                               'suites must be a non-empty list of suite names, got ["a b"]']),
    'repository_unknown_key': ({'apt_package_repository': {**REPOSITORY, 'uri': ['https://example.com']}},
                               ['apt_package_repository.uri. Supported parameters include']),
    'repository_bad_types': ({'apt_package_repository': {**REPOSITORY, 'types': ['deb', 'rpm']}},
                             ['types must be one or more of: deb, deb-src', 'rpm']),
    'repository_no_components': ({'apt_package_repository': {**REPOSITORY, 'components': []}},
                                 ['components must be a non-empty list']),
    'repository_bad_name': ({'apt_package_repository': {**REPOSITORY, 'name': '../evil'}},
                            ['name (the source file name', '"../evil"']),
    'repository_bad_version': ({'apt_package_repository': REPOSITORY, 'apt_package_version': 'latest!'},
                               ['apt_package_version must be null or an apt version', '"latest!"']),
    'deb_empty': ({'apt_package_method': 'deb'}, ['apt_package_debs must be a non-empty list, got []']),
    'deb_two_sources': ({'apt_package_method': 'deb',
                         'apt_package_debs': [{'path': '/tmp/a.deb', 'url': 'https://example.com/a.deb'}]},
                        ['item 1', 'must have exactly one of path, url and s3, not 2']),
    'deb_no_source': ({'apt_package_method': 'deb', 'apt_package_debs': [{'checksum': 'sha256:ab'}]},
                      ['item 1', 'not 0']),
    'deb_relative_path': ({'apt_package_method': 'deb', 'apt_package_debs': [{'path': 'a.deb'}]},
                          ['item 1 ({"path": "a.deb"}): path must be the absolute path of a .deb on the host']),
    'deb_second_item_bad': ({'apt_package_method': 'deb',
                             'apt_package_debs': [{'path': '/tmp/ok.deb'}, {'url': 'example.com/b.deb'}]},
                            ['item 2', 'url must be an http(s) URL of a .deb']),
    'deb_checksum_with_path': ({'apt_package_method': 'deb',
                                'apt_package_debs': [{'path': '/tmp/a.deb', 'checksum': 'sha256:ab'}]},
                               ['checksum goes with url only']),
    'deb_s3_without_key': ({'apt_package_method': 'deb', 'apt_package_debs': [{'s3': {'bucket': 'artifacts'}}]},
                           ['key', 's3']),
    'deb_s3_not_a_deb': ({'apt_package_method': 'deb',
                          'apt_package_debs': [{'s3': {'bucket': 'artifacts', 'key': 'vendor/consul.tar.gz'}}]},
                         ['s3 must be {bucket, key, version_id?, sha256?} with a key ending in .deb']),
    'deb_same_file': ({'apt_package_method': 'deb',
                       'apt_package_debs': [{'path': '/opt/x_1.0_all.deb'}, {'url': 'https://example.com/x_1.0_all.deb'}]},
                      ['two items give the same file name "x_1.0_all.deb"']),
    'deb_relative_dir': ({'apt_package_method': 'deb', 'apt_package_debs': [{'url': 'https://example.com/a.deb'}],
                          'apt_package_deb_dir': 'cache'}, ['apt_package_deb_dir must be an absolute path, got "cache"']),
    'deb_not_a_list': ({'apt_package_method': 'deb', 'apt_package_debs': {'path': '/tmp/a.deb'}}, ['apt_package_debs']),
    'binary_relative': ({'apt_package_method': 'present', 'apt_package_binary': 'bin/goship'},
                        ['apt_package_binary must be null or an absolute path, got "bin/goship"']),
    'account_without_group': ({'apt_package_method': 'present', 'apt_package_account': {'user': 'goship'}},
                              ['group']),
}

SNAPSHOT_DIRS = ['/etc/apt', '/var/lib/dpkg/info']
SNAPSHOT_FILES = ['/var/lib/dpkg/status']


# --------------------------------------------------------------------------------------------- helpers

def output(proc):
    return f'--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}'


def tree_state(paths, files=()):
    """path -> (mode, size, mtime_ns, sha256) of every file and directory under paths, and of files."""
    state = {}
    for root in paths:
        for directory, dirs, names in os.walk(root):
            for name in dirs + names:
                path = os.path.join(directory, name)
                st = os.lstat(path)
                regular = os.path.isfile(path) and not os.path.islink(path)
                state[path] = (st.st_mode, st.st_size, st.st_mtime_ns,
                               hashlib.sha256(Path(path).read_bytes()).hexdigest() if regular else '')
    for path in files:
        if os.path.exists(path):
            st = os.stat(path)
            state[path] = (st.st_mode, st.st_size, st.st_mtime_ns, hashlib.sha256(Path(path).read_bytes()).hexdigest())
    return state


def build_deb(directory, name, depends=None):
    """A real (tiny) .deb: /usr/bin/<name>, Architecture all."""
    root = directory / name
    (root / 'DEBIAN').mkdir(parents=True)
    (root / 'usr' / 'bin').mkdir(parents=True)
    program = root / 'usr' / 'bin' / name
    program.write_text('#!/bin/sh\necho goship\n')
    program.chmod(0o755)
    control = [f'Package: {name}', 'Version: 1.0-1', 'Architecture: all', 'Maintainer: goship <goship@example.invalid>']
    if depends:
        control.append(f'Depends: {depends}')
    control.append('Description: goship.deploy apt_package test package')
    (root / 'DEBIAN' / 'control').write_text('\n'.join(control) + '\n')
    deb = directory / f'{name}_1.0-1_all.deb'
    subprocess.run([DPKG_DEB, '--root-owner-group', '--build', str(root), str(deb)], check=True, capture_output=True)
    return deb


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # pylint: disable=arguments-differ
        self.server.requests.append(f'{self.command} {self.path}')


def case_tasks():
    """The role in a block; its failure message (or ok and apt_package_changed) saved as test_result."""
    return [{'name': 'apt_package', 'block': [
        {'ansible.builtin.include_role': {'name': 'goship.deploy.apt_package'}},
        {'ansible.builtin.set_fact': {'test_result': {'ok': True, 'changed': '{{ apt_package_changed }}'}}},
    ], 'rescue': [
        {'ansible.builtin.set_fact': {'test_result': {'msg': '{{ ansible_failed_result.msg }}'}}},
    ]}]


# --------------------------------------------------------------------------------------------- the run

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """One ansible-playbook --check --diff: play 1 every case but S3 (in parallel), play 2 the S3 case
    alone (its fetch is run_once), play 3 saves every host's test_result."""
    if os.geteuid() != 0:
        pytest.skip('the role manages root-owned files: run as root (it changes nothing in check mode)')
    if DPKG_DEB is None or not os.path.exists(SYSTEM_PYTHON):
        pytest.skip('needs dpkg-deb and Debian\'s python3 (with python3-apt)')
    existing = [p for p in WATCHED if os.path.lexists(p)]
    if existing:
        pytest.skip(f'{existing} already exist on this machine: cannot tell whether check mode wrote them')
    installed = subprocess.run(['dpkg-query', '-W', 'goship-test-dep', 'goship-test-main'], capture_output=True, text=True, check=False)
    if installed.stdout.strip():
        pytest.skip(f'goship-test packages are installed here: {installed.stdout}')
    moto_server = pytest.importorskip('moto.server')
    boto3 = pytest.importorskip('boto3')

    base = tmp_path_factory.mktemp('apt_package')
    debs = base / 'debs'
    debs.mkdir()
    dep, main = build_deb(debs, 'goship-test-dep'), build_deb(debs, 'goship-test-main', depends='goship-test-dep')

    served = base / 'srv'
    served.mkdir()
    (served / 'key.asc').write_text('not really a key\n')
    shutil.copy(main, served / main.name)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(served)))
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f'http://127.0.0.1:{server.server_address[1]}'

    s3 = moto_server.ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
    s3.start()
    aws = {'region': 'us-east-1', 'endpoint_url': 'http://%s:%d' % s3.get_host_and_port(),
           'access_key': 'testing', 'secret_key': 'testing'}
    client = boto3.client('s3', region_name=aws['region'], endpoint_url=aws['endpoint_url'],
                          aws_access_key_id='testing', aws_secret_access_key='testing')
    client.create_bucket(Bucket='artifacts')
    client.put_object(Bucket='artifacts', Key=f'vendor/{main.name}', Body=main.read_bytes())
    controller_dir = base / 'controller'
    controller_dir.mkdir()

    repository = {**REPOSITORY, 'key_url': f'{url}/key.asc', 'types': ['deb', 'deb-src'],
                  'uris': ['https://mirror.example.invalid/vendor/debian'], 'suites': ['bookworm', 'bookworm-updates'],
                  'components': ['main', 'extra']}
    hosts = {
        'repository': {'apt_package_repository': repository, 'apt_package_version': '1.2.3-1',
                       'apt_package_binary': f'/usr/bin/{NAME}'},
        'debs_in_order': {'apt_package_method': 'deb', 'apt_package_debs': [{'path': str(dep)}, {'path': str(main)}],
                          'apt_package_binary': '/usr/bin/goship-test-main'},
        'deb_missing_dependency': {'apt_package_method': 'deb', 'apt_package_debs': [{'path': str(main)}]},
        'deb_url': {'apt_package_method': 'deb', 'apt_package_deb_dir': '/var/cache/goship/goship-test-url',
                    'apt_package_debs': [{'url': f'{url}/{main.name}'}]},
        'deb_path_missing': {'apt_package_method': 'deb', 'apt_package_debs': [{'path': str(base / 'no' / 'x.deb')}]},
        'present': {'apt_package_method': 'present', 'apt_package_binary': '/bin/sh',
                    'apt_package_account': {'user': 'root', 'group': 'root'}},
        'present_without_binary': {'apt_package_method': 'present', 'apt_package_binary': str(base / 'no' / 'goship')},
        'present_var_names': {'apt_package_method': 'present', 'apt_package_binary': str(base / 'no' / 'goship'),
                              'apt_package_var_names': {'apt_package_method': 'x_install_method',
                                                        'apt_package_binary': 'x_binary'}},
        'present_without_group': {'apt_package_method': 'present', 'apt_package_binary': '/bin/sh',
                                  'apt_package_account': {'user': 'goship-nobody', 'group': 'goship-no-such-group'}},
        's3': {'apt_package_method': 'deb', 'apt_package_deb_dir': '/var/cache/goship/goship-test-s3',
               'apt_package_controller_dir': str(controller_dir), 'apt_package_aws': aws,
               'apt_package_debs': [{'s3': {'bucket': 'artifacts', 'key': f'vendor/{main.name}',
                                            'sha256': hashlib.sha256(main.read_bytes()).hexdigest()}}]},
    }
    for case, (variables, _fragments) in FAILING.items():
        hosts[f'case_{case}'] = variables
    for variables in hosts.values():
        variables.setdefault('apt_package_name', NAME)
        for name in [name for name, value in variables.items() if value is UNSET]:
            del variables[name]

    inventory = {'all': {'hosts': {
        name: {'ansible_connection': 'local', 'ansible_python_interpreter': SYSTEM_PYTHON, **variables}
        for name, variables in hosts.items()}}}
    (base / 'inventory.yml').write_text(json.dumps(inventory, indent=1))  # JSON is YAML
    results = base / 'results.json'
    plays = [
        {'name': 'apt_package cases', 'hosts': 'all:!s3', 'gather_facts': False, 'tasks': case_tasks()},
        {'name': 'apt_package from S3', 'hosts': 's3', 'gather_facts': False, 'tasks': case_tasks()},
        {'name': 'save the results', 'hosts': 'all', 'gather_facts': False, 'tasks': [
            {'run_once': True, 'check_mode': False, 'delegate_to': 'localhost', 'ansible.builtin.copy': {
                'content': "{{ dict(groups['all'] | zip(groups['all'] | map('extract', hostvars)"
                           " | map(attribute='test_result', default=none))) | to_json }}",
                'dest': str(results), 'mode': '0644'}}]},
    ]
    (base / 'play.yml').write_text(json.dumps(plays, indent=1))
    # the S3 fetch must use the role's connection options, nothing from this environment
    env = ansible_env(AWS_CONFIG_FILE='/dev/null', AWS_SHARED_CREDENTIALS_FILE='/dev/null')
    before = tree_state(SNAPSHOT_DIRS, SNAPSHOT_FILES)
    try:
        # One case at a time: every "host" is this machine, and concurrent apt/dpkg simulations of
        # the cases contend for the same package database (a flaky 'not satisfiable' otherwise).
        proc = subprocess.run(
            [str(ANSIBLE_PLAYBOOK), '-i', str(base / 'inventory.yml'), '--forks', '1', '--check', '--diff',
             str(base / 'play.yml')],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    finally:
        server.shutdown()
        s3.stop()
    return {
        'proc': proc,
        'stdout': ' '.join(proc.stdout.split()),
        'before': before,
        'after': tree_state(SNAPSHOT_DIRS, SNAPSHOT_FILES),
        'requests': list(server.requests),
        'results': json.loads(results.read_text()) if results.exists() else {},
        'controller_dir': controller_dir,
        'base': base,
    }


def result(run, host):
    value = run['results'].get(host)
    assert value is not None, f'{host}: no result\n{output(run["proc"])}'
    return value


def message(run, host):
    value = result(run, host)
    assert 'msg' in value, f'{host} was accepted: {value}'
    return ' '.join(value['msg'].split())


# --------------------------------------------------------------------------------------------- preflight

def test_the_run_completes(run):
    assert run['proc'].returncode == 0, output(run['proc'])
    assert 'Traceback' not in run['proc'].stdout + run['proc'].stderr
    recap = dict(re.findall(r'^(\S+)\s*:\s*ok=.*failed=(\d+)', run['proc'].stdout, re.M))
    assert set(recap.values()) == {'0'}, recap


@pytest.mark.parametrize('case', sorted(FAILING))
def test_preflight_rejects(run, case):
    text = message(run, f'case_{case}')
    for fragment in FAILING[case][1]:
        assert fragment in text, f'{case}: {fragment!r} not in {text!r}'
    assert 'Traceback' not in text


def test_preflight_stops_before_anything_runs(run):
    preflight = [task['name'] for task in yaml.safe_load((ROLE / 'tasks' / 'preflight.yml').read_text())]
    allowed = ['Validating arguments against arg spec', 'include_role', 'set_fact'] + preflight
    task, reached = None, set()
    for line in run['proc'].stdout.splitlines():
        if line.startswith('TASK ['):
            task = line[len('TASK ['):].rsplit(']', 1)[0]
        match = re.match(r'^(?:ok|changed|skipping|fatal|failed): \[(case_[^\]\s]+)', line)
        if match and not any(name in task for name in allowed):
            reached.add((match.group(1), task))
    assert not reached
    assert sum(1 for host, value in run['results'].items() if host.startswith('case_') and 'msg' in value) == len(FAILING)


# --------------------------------------------------------------------------------------------- check mode

def test_check_mode_changes_nothing(run):
    assert run['after'] == run['before']
    for path in WATCHED:
        assert not os.path.lexists(path), path
    assert list(run['controller_dir'].iterdir()) == []
    installed = subprocess.run(['dpkg-query', '-W', 'goship-test-dep', 'goship-test-main'], capture_output=True, text=True, check=False)
    assert installed.stdout.strip() == ''


def test_check_mode_only_asks_the_loopback_key_url(run):
    # get_url only asks (HEAD) in check mode; the .deb URL is not asked: its directory is not there yet
    assert run['requests'] == ['HEAD /key.asc']


def test_repository_reports_the_deb822_source_it_would_write(run):
    assert result(run, 'repository') == {'ok': True, 'changed': True}
    for fragment in [f'check mode: the apt source is not in place yet, so {NAME} cannot be looked up',
                     f'/etc/apt/sources.list.d/{NAME}.sources', 'Types: deb deb-src,',
                     'URIs: https://mirror.example.invalid/vendor/debian,', 'Suites: bookworm bookworm-updates,',
                     'Components: main extra,', f'Signed-By: {KEYRING}', f'install {NAME}=1.2.3-1.']:
        assert fragment in run['stdout'], fragment


def test_debs_are_installed_in_order(run):
    # goship-test-dep would be installed (dpkg --simulate), then goship-test-main, which needs it
    assert result(run, 'debs_in_order') == {'ok': True, 'changed': True}
    assert ('check mode: goship-test-main_1.0-1_all.deb needs a package that an earlier .deb of the list installs '
            '(Dependency is not satisfiable: goship-test-dep); the run installs them in order.') in run['stdout']


def test_a_missing_dependency_still_fails_in_check_mode(run):
    text = message(run, 'deb_missing_dependency')
    assert 'Dependency is not satisfiable: goship-test-dep' in text


def test_deb_url_not_downloaded_yet(run):
    assert result(run, 'deb_url') == {'ok': True, 'changed': True}
    assert ('check mode: /var/cache/goship/goship-test-url/goship-test-main_1.0-1_all.deb is not downloaded yet; '
            'the run would install it.') in run['stdout']


def test_deb_path_must_exist(run):
    assert message(run, 'deb_path_missing') == \
        f"{run['base']}/no/x.deb does not exist on deb_path_missing (apt_package_debs)."


def test_s3_is_fetched_on_the_controller_with_the_role_s_connection(run):
    # s3_artifact looked at the object through apt_package_aws (moto); check mode downloads nothing
    assert result(run, 's3') == {'ok': True, 'changed': True}
    assert 'changed: [s3 -> localhost] => (item=s3://artifacts/vendor/goship-test-main_1.0-1_all.deb)' \
        in run['proc'].stdout, output(run['proc'])
    assert ('check mode: /var/cache/goship/goship-test-s3/goship-test-main_1.0-1_all.deb is not downloaded yet; '
            'the run would install it.') in run['stdout']


def test_present(run):
    assert result(run, 'present') == {'ok': True, 'changed': False}
    text = message(run, 'present_without_binary')
    assert f"{run['base']}/no/goship is not an executable file on present_without_binary." in text
    assert 'With apt_package_method: present the role installs nothing' in text
    text = message(run, 'present_var_names')
    assert 'With x_install_method: present the role installs nothing' in text and 'point x_binary at it' in text
    text = message(run, 'present_without_group')
    assert 'Group goship-no-such-group does not exist on present_without_group' in text
    assert 'or set apt_package_account' in text


# --------------------------------------------------------------------------------------------- static checks

def load_yaml(relative):
    return yaml.safe_load((ROLE / relative).read_text())


def test_repository_uses_a_keyring_and_deb822_not_apt_key():
    tasks = load_yaml('tasks/repository.yml')
    modules = [next(k for k in task if k.startswith('ansible.')) for task in tasks]
    assert 'ansible.builtin.apt_key' not in modules and 'ansible.builtin.apt_repository' not in modules
    key = next(t['ansible.builtin.get_url'] for t in tasks if 'ansible.builtin.get_url' in t)
    assert key['url'] == '{{ apt_package_repository.key_url }}' and key['dest'] == '{{ apt_package_repository.keyring }}'
    source = next(t['ansible.builtin.deb822_repository'] for t in tasks if 'ansible.builtin.deb822_repository' in t)
    fields = ['name', 'types', 'uris', 'suites', 'components', 'signed_by']
    assert {f: source[f] for f in fields} == {f: '{{ __apt_package_source.%s }}' % f for f in fields}
    internal = load_yaml('vars/main.yml')['__apt_package_source']
    assert internal['signed_by'] == '{{ apt_package_repository.keyring }}'
    assert "default(['deb'], true)" in internal['types']


def test_s3_is_fetched_once_on_the_controller():
    tasks = load_yaml('tasks/deb.yml')
    block = next(t for t in tasks if 'block' in t)
    assert block['module_defaults'] == {'group/goship.deploy.aws': '{{ apt_package_aws }}'}
    fetch = next(t for t in block['block'] if 'goship.deploy.s3_artifact' in t)
    assert fetch['goship.deploy.s3_artifact']['state'] == 'fetched'
    assert (fetch['delegate_to'], fetch['become'], fetch['run_once']) == ('localhost', False, True)
