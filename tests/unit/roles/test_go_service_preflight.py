# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""goship.deploy.go_service rejects bad input before it touches anything, with a message that
says what to change (never a traceback). One ansible-playbook run (in check mode, as a second
safety net): every case is a host of an inventory whose hosts are all this machine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from role_runner import ANSIBLE_PLAYBOOK, local_inventory, run_plays


pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason='ansible-playbook not next to python')

GOOD = {
    'go_service_name': 'gsunit-ok',
    'go_service_version': '1.2.3',
    'go_service_package_src': '/nonexistent/gsunit.deb',
}

# case -> (variables over GOOD, text the failure message must contain)
REJECTED = {
    'no_version': ({'go_service_version': ''}, 'the version to install'),
    'bad_name': ({'go_service_name': 'Hello_Svc'}, 'a Debian package name'),
    'no_source': ({'go_service_package_src': '', 'go_service_artifact_bucket': ''}, 'Give the package as go_service_package_src'),
    'bad_sha256': ({'go_service_artifact_sha256': 'abc'}, '64 lowercase hex'),
    'cache_too_small': ({'go_service_cache_keep': 1}, 'go_service_cache_keep is at least 2'),
    'relative_health_path': ({'go_service_health_path': 'healthz'}, "paths starting with '/'"),
    'zero_timeout': ({'go_service_health_timeout': 0}, 'a timeout and an interval of at least 1 second'),
    'relative_drain_hook': ({'go_service_drain': 'hook', 'go_service_drain_hook': 'drain.yml'}, 'absolute path of a tasks file'),
    'unknown_drain': ({'go_service_drain': 'lb'}, 'go_service_drain'),
    'haproxy_socket_neither_path_nor_port': ({'go_service_drain': 'haproxy', 'go_service_haproxy_socket': 'lb-1'},
                                             'an absolute path, or HOST:PORT'),
    'bad_env_name': ({'go_service_environment': {'1BAD': 'x'}}, 'bad names: 1BAD'),
    'multiline_env': ({'go_service_environment': {'GREETING': 'a\nb'}}, 'single-line values'),
    'migrate_without_database': ({'go_service_migrate': True}, 'missing: host, name, user'),
    'migrate_bad_table': ({'go_service_migrate': True, 'go_service_migrations_table': 'Bad-Table',
                           'go_service_database': {'host': 'db', 'name': 'd', 'user': 'u'}}, 'lowercase SQL identifier'),
}


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    directory = tmp_path_factory.mktemp('go_service_preflight')
    hosts = {'accepted': GOOD}
    hosts.update({case: {**GOOD, **spec[0]} for case, spec in REJECTED.items()})
    inventory = local_inventory(directory, hosts)
    play = [{
        'name': 'go_service preflight cases',
        'hosts': 'all',
        'gather_facts': False,
        'tasks': [{
            'block': [
                # Preflight only for the accepted case (the package source does not exist); the full
                # entry point, argument validation included, for the rejected ones.
                {'ansible.builtin.include_role': {
                    'name': 'goship.deploy.go_service',
                    'tasks_from': "{{ 'preflight' if inventory_hostname == 'accepted' else 'main' }}"}},
                {'ansible.builtin.set_fact': {'outcome': {'failed': False}}},
            ],
            'rescue': [{'ansible.builtin.set_fact': {
                'outcome': {'failed': True, 'msg': "{{ ansible_failed_result.msg | default('') }}",
                            'task': '{{ ansible_failed_task.name | default("") }}'}}}],
        }, {
            'ansible.builtin.copy': {'dest': str(directory) + '/{{ inventory_hostname }}.json',
                                     'content': '{{ outcome | to_json }}', 'mode': '0644'},
            'check_mode': False,
        }],
    }]
    proc = run_plays(directory, play, ['-i', str(inventory), '--check', '--forks', '8'], timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return {name: json.loads((directory / f'{name}.json').read_text()) for name in hosts}, proc


def test_good_input_passes_preflight(results):
    outcomes = results[0]
    assert outcomes['accepted'] == {'failed': False}


@pytest.mark.parametrize('case', sorted(REJECTED))
def test_bad_input_fails_with_an_actionable_message(results, case):
    outcomes = results[0]
    outcome = outcomes[case]
    assert outcome['failed'], f'{case} was accepted'
    assert REJECTED[case][1] in outcome['msg'], outcome
    assert 'Traceback' not in outcome['msg']


def test_nothing_was_created(results):
    proc = results[1]
    assert 'Traceback' not in proc.stdout + proc.stderr
    for name in ('gsunit-ok',):
        assert not Path(f'/etc/{name}').exists()
        assert not Path(f'/var/cache/goship/{name}').exists()
    assert subprocess.run(['getent', 'passwd', 'gsunit-ok'], capture_output=True, check=False).returncode != 0
