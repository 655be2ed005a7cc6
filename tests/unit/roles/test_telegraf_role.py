# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""goship.deploy.telegraf: its rendered configuration, preflight, the repository path in check mode.

Telegraf itself cannot be installed here (no offline package), so the role is tested up to what it
writes: the ``render`` entry point renders every scenario into its own directory and the files are
parsed with ``tomllib``; the ``main`` entry point runs in ``--check --diff`` against localhost, where
it must change nothing (no file under /etc/apt, /etc/telegraf, /etc/default or /etc/systemd, no
systemctl state change) and only talk to a loopback HTTP server standing in for the key and .deb URLs.

The role runs for real: ``ansible-playbook`` from the repository root so ``goship.deploy.telegraf``
resolves to this checkout, against an inventory whose hosts are all this machine (connection local):
one host per scenario or preflight case, so one play runs them all in parallel. Two playbook runs in
all (render and preflight in one, check mode in the other) because each run costs seconds.
``telegraf config check`` is exercised against a stand-in script, systemctl (check mode) too.
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
import tomllib
from pathlib import Path

import pytest
import yaml

from role_runner import ansible_env, local_inventory, output, run_plays

REPO = Path(__file__).resolve().parents[3]
ROLE = REPO / 'roles' / 'telegraf'
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / 'ansible-playbook'
SYSTEMD_ANALYZE = shutil.which('systemd-analyze')
HEADER = '# Managed by goship.deploy.telegraf'

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason='ansible-playbook not next to python')

TOKEN = 'inf1ux-T0ken/with$dollar"quote\\slash'
CW_SECRET = 'cw-Secret-Key-0123'
CW_SESSION = 'cw-Session-Token-4567'
PROM = {'telegraf_outputs_prometheus_client': {}}

HAPROXY_SNIPPET = '[[inputs.haproxy]]\n  servers = ["http://127.0.0.1:8404/stats"]\n'
FILE_OUTPUT_SNIPPET = '[[outputs.file]]\n  files = ["stdout"]\n'

# name -> role variables. Each is rendered into its own directory.
SCENARIOS = {
    'defaults': {**PROM},
    'cloudwatch_only': {
        'telegraf_outputs_cloudwatch': {'region': 'eu-west-1', 'namespace': 'goship/lab', 'high_resolution_metrics': True},
        'telegraf_inputs_statsd': {'enabled': False},
        'telegraf_inputs_system': ['cpu', 'mem'],
        # its telegraf.d also holds what an earlier render left (see the run fixture)
        'telegraf_extra_snippets': {'keep': '[[inputs.kernel]]\n'},
    },
    'influx_only': {
        'telegraf_outputs_influxdb_v2': {'urls': ['https://influx.example.com:8086'], 'token': TOKEN,
                                         'organization': 'acme', 'bucket': 'metrics'},
        # partial: the other statsd settings keep their defaults
        'telegraf_inputs_statsd': {'service_address': ':9125', 'protocol': 'tcp'},
        'telegraf_extra_snippets': {'haproxy': HAPROXY_SNIPPET},
        # telegraf_binary is a stand-in (see FAKE_TELEGRAF) for the `telegraf config check` step
    },
    'everything': {
        'telegraf_outputs_cloudwatch': {'region': 'us-east-1', 'access_key': 'AKIDEXAMPLE',
                                        'secret_key': CW_SECRET, 'token': CW_SESSION},
        'telegraf_outputs_influxdb_v2': {'urls': ['http://127.0.0.1:8086', 'http://10.0.0.2:8086'], 'token': TOKEN,
                                         'organization': 'acme', 'bucket': 'metrics', 'timeout': '5s'},
        'telegraf_outputs_prometheus_client': {'listen': '127.0.0.1:9274', 'expiration_interval': '120s'},
        'telegraf_procstat': [
            {'systemd_unit': 'hello-svc.service'},
            {'pattern': 'consul agent', 'name_override': 'consul', 'tags': {'team': 'platform'}},
            {'pid_file': '/run/haproxy.pid'},
        ],
        'telegraf_extra_snippets': {'haproxy': HAPROXY_SNIPPET, 'files.conf': FILE_OUTPUT_SNIPPET},
        'telegraf_global_tags': {'service': 'hello', 'env': 'lab-override', 'shard': 3},
        'telegraf_agent': {'interval': '30s', 'hostname': 'web-1', 'metric_buffer_limit': None},
        'telegraf_inputs_system': ['cpu', 'mem', 'disk', 'system', 'net'],
        'telegraf_inputs_system_options': {'disk': {'mount_points': ['/']}, 'net': {'interfaces': ['eth0']}},
        'telegraf_environment': {'HAPROXY_PASSWORD': 'hap-pass'},
        # what the aws_ec2 inventory (hostvars_prefix ec2_) gives a host
        'ec2_instance_id': 'i-0123456789abcdef0',
        'ec2_placement': {'region': 'us-east-1', 'availability_zone': 'us-east-1a'},
        'ec2_tags': {'Name': 'lab-web-1', 'app': 'hello', 'env': 'lab', 'role': 'web', 'aws:cloudformation:stack': 'x'},
    },
    'ec2_metadata': {
        # amazon.aws.ec2_metadata_facts' facts win over the inventory's
        'telegraf_outputs_cloudwatch': {},
        'ansible_ec2_instance_id': 'i-0fromMetadata',
        'ansible_ec2_placement_region': 'eu-central-1',
        'ec2_instance_id': 'i-0fromInventory',
        'ec2_placement': {'region': 'us-west-2'},
    },
    'ec2_off': {
        **PROM,
        'telegraf_ec2_tags': False,
        'ec2_instance_id': 'i-0123456789abcdef0',
        'ec2_placement': {'region': 'us-east-1'},
        'ec2_tags': {'app': 'hello'},
        # a token that already is a reference stays one; its value comes from telegraf_environment
        'telegraf_outputs_influxdb_v2': {'urls': ['http://127.0.0.1:8086'], 'token': '${MY_INFLUX_TOKEN}',
                                         'organization': 'acme', 'bucket': 'metrics'},
        'telegraf_environment': {'MY_INFLUX_TOKEN': 'from-environment'},
    },
    'aws_region': {
        'telegraf_outputs_cloudwatch': {'namespace': 'Custom/NS'},
        'telegraf_aws': {'region': 'ap-southeast-2', 'endpoint_url': 'http://127.0.0.1:1'},
        # telegraf_binary is a stand-in too old for `config check`
    },
    'snippet_output': {
        'telegraf_extra_snippets': {'file-output': FILE_OUTPUT_SNIPPET},
        'telegraf_inputs_statsd': {'enabled': False},
        'telegraf_inputs_system': [],
    },
}

# Scenarios whose telegraf_binary is a stand-in: scenario -> (version it reports, exit code of `config check`)
FAKE_BINARIES = {
    'influx_only': ('Telegraf 1.32.3 (git: HEAD@1a2b3c4d)', 0),
    'aws_region': ('Telegraf 1.28.5 (git: HEAD@5e6f7a8b)', 0),
    'case_binary_rejects': ('Telegraf 1.33.0 (git: HEAD@9c0d1e2f)', 1),
}

# name -> (role variables over PROM, fragments the failure message must contain)
FAILING = {
    'no_output': ({'telegraf_outputs_prometheus_client': None},
                  ['No output is configured', 'telegraf_outputs_cloudwatch', 'telegraf_outputs_influxdb_v2',
                   'telegraf_outputs_prometheus_client', 'telegraf_extra_snippets']),
    'output_not_a_dict': ({'telegraf_outputs_prometheus_client': 'yes'}, ['telegraf_outputs_prometheus_client', 'dict']),
    'bad_interval': ({'telegraf_agent': {'interval': 'ten seconds'}}, ['Go durations', 'interval="ten seconds"']),
    'bad_batch_size': ({'telegraf_agent': {'metric_batch_size': 0}}, ['metric_batch_size=0']),
    'bad_install_method': ({'telegraf_install_method': 'pip'}, ['telegraf_install_method', 'pip']),
    'deb_without_source': ({'telegraf_install_method': 'deb'}, ['exactly one of telegraf_deb_path', 'got 0 of them']),
    'deb_two_sources': ({'telegraf_install_method': 'deb', 'telegraf_deb_path': '/tmp/t.deb',
                         'telegraf_deb_url': 'https://example.com/t.deb'}, ['got 2 of them']),
    'deb_relative_path': ({'telegraf_install_method': 'deb', 'telegraf_deb_path': 'telegraf.deb'},
                          ['telegraf_deb_path="telegraf.deb"']),
    'deb_s3_without_key': ({'telegraf_install_method': 'deb', 'telegraf_deb_s3': {'bucket': 'artifacts'}},
                           ['key', 'telegraf_deb_s3']),
    'influx_incomplete': ({'telegraf_outputs_influxdb_v2': {'urls': ['http://127.0.0.1:8086']}},
                          ['token missing', 'organization=""', 'bucket=""']),
    'influx_bad_url': ({'telegraf_outputs_influxdb_v2': {'urls': ['influx:8086'], 'token': 't', 'organization': 'o',
                                                         'bucket': 'b'}}, ['http(s) URLs', 'influx:8086']),
    'cloudwatch_without_region': ({'telegraf_outputs_cloudwatch': {}}, ['needs a region', 'found none']),
    'procstat_without_selector': ({'telegraf_procstat': [{'name_override': 'x'}]},
                                  ['exactly one of systemd_unit, pattern, pid_file', 'name_override']),
    'procstat_two_selectors': ({'telegraf_procstat': [{'systemd_unit': 'a.service', 'pattern': 'a'}]},
                               ['exactly one of systemd_unit, pattern, pid_file']),
    'bad_system_input': ({'telegraf_inputs_system': ['cpu', 'CPU!']}, ['telegraf_inputs_system', 'CPU!']),
    'bad_statsd_protocol': ({'telegraf_inputs_statsd': {'protocol': 'sctp'}}, ['protocol udp', 'protocol="sctp"']),
    'bad_snippet_name': ({'telegraf_extra_snippets': {'../evil': '[[inputs.cpu]]\n'}}, ['telegraf_extra_snippets', '../evil']),
    'invalid_snippet_toml': ({'telegraf_extra_snippets': {'broken': '[[inputs.cpu]\n'}},
                             ['not valid TOML', 'telegraf.d/broken.conf']),
    'token_with_line_break': ({'telegraf_outputs_influxdb_v2': {'urls': ['http://127.0.0.1:8086'], 'token': 'sup3r\nsecret',
                                                                'organization': 'o', 'bucket': 'b'}}, ['line break']),
    'bad_environment_name': ({'telegraf_environment': {'1BAD': 'x'}}, ['telegraf_environment', '1BAD']),
    'bad_service_state': ({'telegraf_service_state': 'running'}, ['telegraf_service_state', 'running']),
    'nested_global_tag': ({'telegraf_global_tags': {'a': {'b': 'c'}}}, ['telegraf_global_tags']),
    'relative_render_dir': ({'telegraf_render_dir': 'build/telegraf'}, ['absolute', 'build/telegraf']),
    # the stand-in telegraf prints the token it was given: the message shows it masked
    'binary_rejects': ({'telegraf_outputs_influxdb_v2': {'urls': ['http://127.0.0.1:8086'], 'token': TOKEN,
                                                         'organization': 'acme', 'bucket': 'metrics'}},
                       ['telegraf config check rejected the configuration (exit 1)',
                        'invalid token "********"', 'plugin outputs.influxdb_v2']),
}

# Stand-in for telegraf (not installable offline): `version`, and `config check` that logs what it
# was given (argv, the files it was pointed at, INFLUX_TOKEN from the environment).
FAKE_TELEGRAF = r'''#!/usr/bin/env python3
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
version, code = json.load(open(os.path.join(here, "behaviour.json")))
args = sys.argv[1:]
if args == ["version"]:
    print(version)
    sys.exit(0)
seen = {"argv": args, "token": os.environ.get("INFLUX_TOKEN"), "files": {}}
if "--config" in args:
    seen["files"]["config"] = open(args[args.index("--config") + 1]).read()
if "--config-directory" in args:
    d = args[args.index("--config-directory") + 1]
    seen["files"]["snippets"] = sorted(os.listdir(d))
with open(os.path.join(here, "calls.jsonl"), "a") as f:
    f.write(json.dumps(seen) + "\n")
if code:
    sys.stderr.write('E! loading config: plugin outputs.influxdb_v2: invalid token "%s"\n' % seen["token"])
sys.exit(code)
'''

SNAPSHOT = r'''
import hashlib, json, os, sys
root, out = sys.argv[1], sys.argv[2]
snap = {}
for d, _dirs, files in os.walk(root):
    for f in files:
        p = os.path.join(d, f)
        snap[p] = [os.stat(p).st_mtime_ns, hashlib.sha256(open(p, "rb").read()).hexdigest()]
json.dump(snap, open(out, "w"))
'''


# --------------------------------------------------------------------------------------------- helpers

def run_playbook(directory, hosts, tasks, env=None, args=(), python=sys.executable):
    """Run one play over ``hosts`` (name -> host variables), every one of them this machine through a
    local connection, in parallel; returns the CompletedProcess (never raises on failure)."""
    inventory = local_inventory(directory, hosts, python)
    play = [{'name': 'telegraf test', 'hosts': 'all', 'gather_facts': False, 'tasks': tasks}]
    return run_plays(directory, play, ['-i', str(inventory), '--forks', str(len(hosts))], args=args,
                     env=ansible_env(**(env or {})))


def parse_env_file(text):
    """NAME -> value of an EnvironmentFile written by the role (double-quoted, systemd's escapes)."""
    values = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        match = re.fullmatch(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"', line)
        assert match, line
        values[match.group(1)] = re.sub(r'\\(.)', r'\1', match.group(2))
    return values


def section(text, name):
    """The lines of one [Section] of a unit file."""
    match = re.search(rf'^\[{name}\]\n(.*?)(?=^\[|\Z)', text, re.M | re.S)
    return [] if match is None else [line for line in match.group(1).splitlines() if line]


# --------------------------------------------------------------------------------------------- render + preflight run

def save_results_task(dest):
    """A task that writes every host's test_result (set in the block or its rescue) to one JSON file."""
    return {'name': 'save the results', 'run_once': True, 'check_mode': False, 'ansible.builtin.copy': {
        'content': "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)"
                   " | map(attribute='test_result', default=none))) | to_json }}",
        'dest': str(dest), 'mode': '0644'}}


def write_fake_telegraf(directory, version, code):
    directory.mkdir(parents=True)
    (directory / 'behaviour.json').write_text(json.dumps([version, code]))
    script = directory / 'telegraf'
    script.write_text(FAKE_TELEGRAF.replace('/usr/bin/env python3', sys.executable, 1))
    script.chmod(0o755)
    return script


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """One play, one host per scenario and per preflight case (all this machine, in parallel): the
    render entry point in a block/rescue that saves telegraf_rendered or the failure message; then
    ``everything`` is snapshotted and rendered again."""
    base = tmp_path_factory.mktemp('telegraf_render')
    dirs = {name: base / name for name in SCENARIOS}
    # left by an earlier render: a snippet with the role's header (goes), one without (stays)
    stale = dirs['cloudwatch_only'] / 'telegraf.d'
    stale.mkdir(parents=True)
    (stale / 'old.conf').write_text(f"{HEADER}: edit telegraf_extra_snippets['old'], not this file.\n[[inputs.swap]]\n")
    (stale / 'foreign.conf').write_text('[[inputs.kernel]]\n')
    (stale / 'notes.txt').write_text(f'{HEADER}\n')

    hosts = {}
    for name, variables in SCENARIOS.items():
        hosts[name] = {**variables, 'telegraf_render_dir': str(dirs[name])}
    for case, (overrides, _fragments) in FAILING.items():
        hosts[f'case_{case}'] = {**PROM, 'telegraf_render_dir': str(base / 'failing' / case), **overrides}
    for host, variables in hosts.items():
        if host != 'defaults':
            variables['systemd_unit_verify'] = False  # systemd-analyze runs once, for `defaults`: it costs seconds
    for host, (version, code) in FAKE_BINARIES.items():
        hosts[host]['telegraf_binary'] = str(write_fake_telegraf(base / 'fake' / host, version, code))

    tasks = [
        {'name': 'render', 'block': [
            {'ansible.builtin.include_role': {'name': 'goship.deploy.telegraf', 'tasks_from': 'render'}},
            {'ansible.builtin.set_fact': {'test_result': {'rendered': '{{ telegraf_rendered }}'}}},
        ], 'rescue': [
            {'ansible.builtin.set_fact': {'test_result': {'msg': '{{ ansible_failed_result.msg }}'}}},
        ]},
        {'name': 'snapshot everything', 'changed_when': False, 'when': "inventory_hostname == 'everything'",
         'ansible.builtin.command': {'argv': [sys.executable, '-c', SNAPSHOT, str(dirs['everything']),
                                              str(base / 'everything.snapshot.json')]}},
        {'name': 'render everything again', 'when': "inventory_hostname == 'everything'",
         'ansible.builtin.include_role': {'name': 'goship.deploy.telegraf', 'tasks_from': 'render'}},
        save_results_task(base / 'results.json'),
    ]
    proc = run_playbook(base, hosts, tasks)
    assert proc.returncode == 0, output(proc)
    results = json.loads((base / 'results.json').read_text())
    for name in SCENARIOS:
        assert 'rendered' in results[name], f'{name}: {results[name]}'
    return {
        'proc': proc,
        'base': base,
        'dirs': dirs,
        'rendered': {name: results[name]['rendered'] for name in SCENARIOS},
        'snapshot': json.loads((base / 'everything.snapshot.json').read_text()),
        'messages': {case: results[f'case_{case}'].get('msg', 'ok') for case in FAILING},
        'fake': base / 'fake',
    }


def conf_text(run, scenario):
    return (run['dirs'][scenario] / 'telegraf.conf').read_text()


def conf(run, scenario):
    return tomllib.loads(conf_text(run, scenario))


def env_text(run, scenario):
    return (run['dirs'][scenario] / 'telegraf.env').read_text()


def unit_text(run, scenario):
    return (run['dirs'][scenario] / 'telegraf.service').read_text()


def test_files_written_and_reported(run):
    for name, variables in SCENARIOS.items():
        directory = run['dirs'][name]
        snippets = [re.sub(r'(\.conf)?$', '.conf', n, count=1)
                    for n in variables.get('telegraf_extra_snippets', {})]
        expected = ([directory / 'telegraf.conf'] + [directory / 'telegraf.d' / s for s in snippets]
                    + [directory / 'telegraf.env', directory / 'telegraf.service'])
        assert run['rendered'][name] == [str(p) for p in expected], name
        for path in expected:
            assert path.is_file(), path
        assert oct((directory / 'telegraf.env').stat().st_mode & 0o777) == '0o600', name  # holds secrets


def test_every_file_is_valid_toml_with_the_header(run):
    for name in SCENARIOS:
        for path in [run['dirs'][name] / 'telegraf.conf', *sorted((run['dirs'][name] / 'telegraf.d').glob('*.conf'))]:
            text = path.read_text()
            tomllib.loads(text)
            if path.name != 'foreign.conf':
                assert text.startswith(HEADER), path
            assert text.endswith('\n') and not text.endswith('\n\n'), path
            assert 'None' not in text, path


def test_defaults(run):
    data = conf(run, 'defaults')
    assert data['agent'] == {
        'interval': '10s', 'round_interval': True, 'metric_batch_size': 1000, 'metric_buffer_limit': 10000,
        'collection_jitter': '0s', 'flush_interval': '10s', 'flush_jitter': '0s', 'precision': '',
        'omit_hostname': False, 'hostname': '',
    }
    assert data['global_tags'] == {}
    assert list(data['outputs']) == ['prometheus_client']
    assert data['outputs']['prometheus_client'] == [{'listen': ':9273', 'path': '/metrics', 'metric_version': 2}]
    inputs = data['inputs']
    assert list(inputs) == ['statsd', 'cpu', 'mem', 'disk', 'system']
    assert inputs['statsd'] == [{
        'service_address': '127.0.0.1:8125', 'protocol': 'udp', 'delete_gauges': True, 'delete_counters': True,
        'delete_sets': True, 'delete_timings': True, 'percentiles': [50.0, 90.0, 99.0], 'percentile_limit': 1000,
        'metric_separator': '_', 'allowed_pending_messages': 10000,
    }]
    assert inputs['cpu'] == [{'percpu': False, 'totalcpu': True, 'collect_cpu_time': False, 'report_active': False}]
    assert inputs['disk'][0]['ignore_fs'] == ['tmpfs', 'devtmpfs', 'devfs', 'iso9660', 'overlay', 'aufs', 'squashfs']
    assert inputs['mem'] == [{}] and inputs['system'] == [{}]
    assert 'procstat' not in inputs
    assert list((run['dirs']['defaults'] / 'telegraf.d').iterdir()) == []
    assert parse_env_file(env_text(run, 'defaults')) == {}


def test_cloudwatch_alone_and_statsd_off(run):
    data = conf(run, 'cloudwatch_only')
    assert data['outputs'] == {'cloudwatch': [{'region': 'eu-west-1', 'namespace': 'goship/lab',
                                               'high_resolution_metrics': True}]}
    assert list(data['inputs']) == ['cpu', 'mem']  # no statsd
    assert '[[inputs.statsd]]' not in conf_text(run, 'cloudwatch_only')


def test_influxdb_token_only_in_the_environment_file(run):
    for scenario in ['influx_only', 'everything']:
        data = conf(run, scenario)
        assert data['outputs']['influxdb_v2'][0]['token'] == '${INFLUX_TOKEN}'
        texts = [conf_text(run, scenario)] + [p.read_text() for p in (run['dirs'][scenario] / 'telegraf.d').glob('*')]
        for text in texts:
            assert TOKEN not in text and 'inf1ux' not in text
        assert parse_env_file(env_text(run, scenario))['INFLUX_TOKEN'] == TOKEN
    influx = conf(run, 'influx_only')['outputs']['influxdb_v2'][0]
    assert influx == {'urls': ['https://influx.example.com:8086'], 'token': '${INFLUX_TOKEN}',
                      'organization': 'acme', 'bucket': 'metrics'}
    # systemd's double-quote escapes for ", \, $ and `
    assert 'INFLUX_TOKEN="inf1ux-T0ken/with\\$dollar\\"quote\\\\slash"' in env_text(run, 'influx_only').splitlines()


def test_no_secret_in_the_playbook_output(run):
    for secret in [TOKEN, 'inf1ux-T0ken', CW_SECRET, CW_SESSION, 'hap-pass', 'sup3r']:
        assert secret not in run['proc'].stdout + run['proc'].stderr, secret


def test_statsd_partial_override_keeps_the_other_defaults(run):
    statsd = conf(run, 'influx_only')['inputs']['statsd'][0]
    assert statsd['service_address'] == ':9125'
    assert statsd['protocol'] == 'tcp'
    assert statsd['delete_gauges'] is True and statsd['metric_separator'] == '_'
    assert statsd['percentiles'] == [50.0, 90.0, 99.0]
    assert 'enabled' not in statsd


def test_everything(run):
    data = conf(run, 'everything')
    outputs = data['outputs']
    assert list(outputs) == ['cloudwatch', 'influxdb_v2', 'prometheus_client']
    assert outputs['cloudwatch'] == [{
        'region': 'us-east-1', 'namespace': 'goship', 'high_resolution_metrics': False, 'access_key': 'AKIDEXAMPLE',
        'secret_key': '${CLOUDWATCH_SECRET_KEY}', 'token': '${CLOUDWATCH_SESSION_TOKEN}',
    }]
    assert outputs['influxdb_v2'][0]['urls'] == ['http://127.0.0.1:8086', 'http://10.0.0.2:8086']
    assert outputs['influxdb_v2'][0]['timeout'] == '5s'  # extra plugin options pass through
    assert outputs['prometheus_client'] == [{'listen': '127.0.0.1:9274', 'path': '/metrics', 'metric_version': 2,
                                             'expiration_interval': '120s'}]
    # agent: partial override merged over the defaults; null drops a key
    assert data['agent']['interval'] == '30s' and data['agent']['hostname'] == 'web-1'
    assert data['agent']['flush_interval'] == '10s'
    assert 'metric_buffer_limit' not in data['agent']
    inputs = data['inputs']
    assert list(inputs) == ['statsd', 'cpu', 'mem', 'disk', 'system', 'net', 'procstat']
    assert inputs['disk'][0]['mount_points'] == ['/'] and 'ignore_fs' in inputs['disk'][0]
    assert inputs['net'] == [{'interfaces': ['eth0']}]
    assert inputs['procstat'] == [
        {'systemd_unit': 'hello-svc.service'},
        {'pattern': 'consul agent', 'name_override': 'consul', 'tags': {'team': 'platform'}},
        {'pid_file': '/run/haproxy.pid'},
    ]
    assert '  systemd_unit = "hello-svc.service"' in conf_text(run, 'everything').splitlines()
    env = parse_env_file(env_text(run, 'everything'))
    assert env == {'INFLUX_TOKEN': TOKEN, 'CLOUDWATCH_SECRET_KEY': CW_SECRET, 'CLOUDWATCH_SESSION_TOKEN': CW_SESSION,
                   'HAPROXY_PASSWORD': 'hap-pass'}
    for secret in [CW_SECRET, CW_SESSION, 'hap-pass']:
        assert secret not in conf_text(run, 'everything')


def test_extra_snippets(run):
    snippets = run['dirs']['everything'] / 'telegraf.d'
    assert sorted(p.name for p in snippets.iterdir()) == ['files.conf', 'haproxy.conf']
    haproxy = (snippets / 'haproxy.conf').read_text()
    assert haproxy.splitlines()[0].startswith(HEADER)
    assert haproxy.split('\n', 1)[1] == HAPROXY_SNIPPET
    assert tomllib.loads(haproxy) == {'inputs': {'haproxy': [{'servers': ['http://127.0.0.1:8404/stats']}]}}
    assert tomllib.loads((snippets / 'files.conf').read_text()) == {'outputs': {'file': [{'files': ['stdout']}]}}


def test_global_tags_with_ec2_tags_from_the_inventory(run):
    assert conf(run, 'everything')['global_tags'] == {
        'instance_id': 'i-0123456789abcdef0',
        'region': 'us-east-1',
        'Name': 'lab-web-1',
        'app': 'hello',
        'env': 'lab-override',   # telegraf_global_tags win over EC2 tags
        'role': 'web',
        'service': 'hello',
        'shard': '3',            # tags are strings
    }                            # and the EC2 tags not in telegraf_ec2_tag_keys are left out


def test_ec2_metadata_facts_win_and_give_cloudwatch_its_region(run):
    data = conf(run, 'ec2_metadata')
    assert data['global_tags'] == {'instance_id': 'i-0fromMetadata', 'region': 'eu-central-1'}
    assert data['outputs']['cloudwatch'][0]['region'] == 'eu-central-1'


def test_ec2_tags_off(run):
    assert conf(run, 'ec2_off')['global_tags'] == {}


def test_cloudwatch_region_from_telegraf_aws(run):
    assert conf(run, 'aws_region')['outputs']['cloudwatch'] == [
        {'region': 'ap-southeast-2', 'namespace': 'Custom/NS', 'high_resolution_metrics': False}]


def test_an_output_in_a_snippet_is_enough(run):
    data = conf(run, 'snippet_output')
    assert 'outputs' not in data and 'inputs' not in data
    assert (run['dirs']['snippet_output'] / 'telegraf.d' / 'file-output.conf').is_file()


def test_a_token_reference_is_kept(run):
    assert conf(run, 'ec2_off')['outputs']['influxdb_v2'][0]['token'] == '${MY_INFLUX_TOKEN}'
    assert parse_env_file(env_text(run, 'ec2_off')) == {'MY_INFLUX_TOKEN': 'from-environment'}


def test_stale_snippets_with_the_header_are_removed(run):
    snippets = run['dirs']['cloudwatch_only'] / 'telegraf.d'
    assert sorted(p.name for p in snippets.iterdir()) == ['foreign.conf', 'keep.conf', 'notes.txt']
    assert (snippets / 'foreign.conf').read_text() == '[[inputs.kernel]]\n'


def test_render_is_idempotent(run):
    snapshot = run['snapshot']
    assert len(snapshot) == 5  # conf, 2 snippets, env, unit
    for path, (mtime, digest) in snapshot.items():
        data = Path(path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, path
        assert Path(path).stat().st_mtime_ns == mtime, f'{path} rewritten'


def test_unit(run):
    text = unit_text(run, 'defaults')
    service = section(text, 'Service')
    for line in [
        'ExecStart=/usr/bin/telegraf -config /etc/telegraf/telegraf.conf -config-directory /etc/telegraf/telegraf.d',
        'ExecReload=/bin/kill -HUP $MAINPID',
        'User=telegraf',
        'Group=telegraf',
        'EnvironmentFile=-/etc/default/telegraf',
        'MemoryMax=256M',
        # procstat must see other users' processes, cpu/mem/system read /proc/stat, meminfo, uptime
        'ProtectProc=default',
        'ProcSubset=all',
        'ProtectHome=read-only',
        # the rest of systemd_unit's hardening stays
        'NoNewPrivileges=yes',
        'ProtectSystem=strict',
        'PrivateTmp=yes',
        'CapabilityBoundingSet=',
    ]:
        assert line in service, line
    assert not any(line.startswith(('DynamicUser=', 'Environment=')) for line in service)
    for line in ['ProtectProc=invisible', 'ProcSubset=pid', 'ProtectHome=yes']:
        assert line not in service
    assert section(text, 'Install') == ['WantedBy=multi-user.target']


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason='systemd-analyze not installed')
def test_unit_passes_systemd_analyze_verify(run):
    proc = subprocess.run([SYSTEMD_ANALYZE, 'verify', '--man=no', str(run['dirs']['defaults'] / 'telegraf.service')],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, 'LC_ALL': 'C', 'SYSTEMD_COLORS': '0'})
    problems = [line for line in proc.stderr.splitlines()
                if line.strip() and 'telegraf is not executable: No such file or directory' not in line]
    assert not problems, proc.stderr


@pytest.mark.parametrize('case', sorted(FAILING))
def test_preflight_rejects(run, case):
    message = run['messages'][case]
    assert message != 'ok', f'{case} was accepted'
    for fragment in FAILING[case][1]:
        assert fragment in message, f'{case}: {fragment!r} not in {message!r}'
    assert 'Traceback' not in message
    assert TOKEN not in message and 'sup3r' not in message  # secrets stay out of messages
    assert not (run['base'] / 'failing' / case).exists(), f'{case}: something was written'


def test_preflight_failures_are_messages_not_tracebacks(run):
    assert 'Traceback' not in run['proc'].stdout + run['proc'].stderr
    recap = dict(re.findall(r'^(\S+)\s*:\s*ok=.*rescued=(\d+)', run['proc'].stdout, re.M))
    assert recap == {**{name: '0' for name in SCENARIOS}, **{f'case_{case}': '1' for case in FAILING}}


def test_telegraf_config_check_gets_the_rendered_files_and_the_secrets(run):
    calls = [json.loads(line) for line in (run['fake'] / 'influx_only' / 'calls.jsonl').read_text().splitlines()]
    assert len(calls) == 1
    argv = calls[0]['argv']
    scratch = Path(argv[1]).parent
    assert argv == ['--config', str(scratch / 'telegraf.conf'), '--config-directory', str(scratch / 'telegraf.d'),
                    'config', 'check']
    assert scratch != run['dirs']['influx_only'] and not scratch.exists()  # a scratch copy, removed afterwards
    assert calls[0]['files']['config'] == conf_text(run, 'influx_only')
    assert calls[0]['files']['snippets'] == ['haproxy.conf']
    assert calls[0]['token'] == TOKEN  # ${INFLUX_TOKEN} resolves as it will under systemd


def test_telegraf_before_1_32_is_not_asked_to_check(run):
    assert not (run['fake'] / 'aws_region' / 'calls.jsonl').exists()
    assert 'Telegraf 1.28.5 (git: HEAD@5e6f7a8b)) has no `config check`' in ' '.join(run['proc'].stdout.split())
    assert (run['dirs']['aws_region'] / 'telegraf.conf').is_file()


# --------------------------------------------------------------------------------------------- static checks

def load_yaml(relative):
    return yaml.safe_load((ROLE / relative).read_text())


def test_argument_specs_cover_every_default():
    defaults = load_yaml('defaults/main.yml')
    assert all(name.startswith('telegraf_') for name in defaults)
    specs = load_yaml('meta/argument_specs.yml')['argument_specs']
    assert set(specs) == {'main', 'render'}
    for entry, spec in specs.items():
        options = spec['options']
        assert set(options) == set(defaults), entry
        for name, value in defaults.items():
            if value is None:
                assert 'default' not in options[name], name
            else:
                assert options[name].get('default') == value, name


def test_documented_dict_defaults_are_what_partial_dicts_merge_over():
    defaults, internal = load_yaml('defaults/main.yml'), load_yaml('vars/main.yml')
    assert defaults['telegraf_agent'] == internal['__telegraf_agent_base']
    assert defaults['telegraf_inputs_statsd'] == internal['__telegraf_statsd_base']


def test_install_goes_through_apt_package_with_influxdata_s_repository():
    """The install phase is goship.deploy.apt_package (keyring + deb822, see test_apt_package_role.py)
    with telegraf's variables mapped onto it."""
    assert not (ROLE / 'tasks' / 'install_repository.yml').exists() and not (ROLE / 'tasks' / 'install_deb.yml').exists()
    [task] = load_yaml('tasks/install.yml')
    include = task['ansible.builtin.include_role']
    assert include['name'] == 'goship.deploy.apt_package'
    assert include['apply']['tags'] == ['telegraf', 'telegraf_install']
    variables = task['vars']
    assert variables['apt_package_name'] == 'telegraf'
    assert variables['apt_package_method'] == '{{ telegraf_install_method }}'
    assert variables['apt_package_version'] == '{{ telegraf_version }}'
    assert variables['apt_package_binary'] == '{{ telegraf_binary }}'
    assert variables['apt_package_account'] == {'user': '{{ telegraf_user }}', 'group': '{{ telegraf_group }}'}
    assert variables['apt_package_deb_dir'] == '{{ telegraf_deb_dir }}'
    assert variables['apt_package_controller_dir'] == '{{ telegraf_deb_controller_dir }}'
    assert variables['apt_package_aws'] == '{{ telegraf_aws }}'
    internal = load_yaml('vars/main.yml')
    assert internal['__telegraf_apt_repository'] == {
        'name': 'influxdata', 'key_url': '{{ telegraf_apt_key_url }}', 'key_checksum': '{{ telegraf_apt_key_checksum }}',
        'keyring': '{{ telegraf_apt_keyring }}', 'uris': ['{{ telegraf_apt_repository_url }}'],
        'suites': ['{{ telegraf_apt_suite }}'], 'components': '{{ telegraf_apt_components }}', 'types': ['deb']}
    for name in ['telegraf_deb_path', 'telegraf_deb_url', 'telegraf_deb_checksum', 'telegraf_deb_s3']:
        assert name in internal['__telegraf_debs'], name
    defaults = load_yaml('defaults/main.yml')
    assert defaults['telegraf_apt_key_url'] == 'https://repos.influxdata.com/influxdata-archive.key'
    assert defaults['telegraf_apt_keyring'] == '/etc/apt/keyrings/influxdata-archive.asc'
    assert defaults['telegraf_apt_repository_url'] == 'https://repos.influxdata.com/debian'


# --------------------------------------------------------------------------------------------- check mode

FAKE_SYSTEMCTL = r'''#!/usr/bin/env python3
"""Stand-in for systemctl on a machine without systemd: every unit unknown, every call logged."""
import os
import sys

with open(os.environ["FAKE_SYSTEMCTL_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\n")
args = [a for a in sys.argv[1:] if not a.startswith("-")]
cmd, units = (args[0], args[1:]) if args else ("", [])
if cmd == "show":
    for unit in units:
        print(f"Id={unit}\nLoadState=not-found\nActiveState=inactive\nSubState=dead")
elif cmd == "is-enabled":
    print("not-found")
    sys.exit(1)
elif cmd == "is-active":
    print("inactive")
    sys.exit(3)
'''

MUTATING = re.compile(r'^(daemon-reload|daemon-reexec|start|stop|restart|reload|try-restart|enable|disable|mask|unmask)\b')


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # pylint: disable=arguments-differ
        self.server.requests.append(f'{self.command} {self.path}')


def tree_state(root):
    """path -> (mode, size, mtime_ns, sha256) of everything under root."""
    state = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest() if os.path.isfile(path) and not os.path.islink(path) else ''
            state[path] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return state


WATCHED = ['/etc/telegraf', '/etc/default/telegraf', '/etc/systemd/system/telegraf.service',
           '/etc/apt/sources.list.d/influxdata.sources', '/etc/apt/keyrings/custom-influx.asc', '/var/cache/goship']


@pytest.fixture(scope='module')
def check_run(tmp_path_factory):
    """The main entry point in --check --diff: repository (custom URLs), deb from a URL, present without a binary."""
    if os.geteuid() != 0:
        pytest.skip('the main entry point manages root-owned files: run as root (it changes nothing in check mode)')
    existing = [p for p in WATCHED if os.path.lexists(p)]
    if existing:
        pytest.skip(f'{existing} already exist on this machine: cannot tell whether check mode wrote them')
    base = tmp_path_factory.mktemp('telegraf_check')
    served = base / 'srv'
    served.mkdir()
    (served / 'influx-key.asc').write_text('not really a key\n')
    (served / 'telegraf_1.32.3-1_amd64.deb').write_bytes(b'!<arch>\nnot really a package\n')
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(served)))
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f'http://127.0.0.1:{server.server_address[1]}'

    bin_dir = base / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'systemctl').write_text(FAKE_SYSTEMCTL.replace('/usr/bin/env python3', sys.executable, 1))
    (bin_dir / 'systemctl').chmod(0o755)
    log = base / 'systemctl.log'
    log.touch()

    hosts = {
        'repository': {
            **PROM,
            'telegraf_apt_key_url': f'{url}/influx-key.asc',
            'telegraf_apt_keyring': '/etc/apt/keyrings/custom-influx.asc',
            'telegraf_apt_repository_url': 'https://mirror.example.invalid/influxdata/debian',
            'telegraf_apt_suite': 'bookworm',
            'telegraf_apt_components': ['main', 'extra'],
            'telegraf_version': '1.32.3-1',
            'telegraf_outputs_influxdb_v2': {'urls': ['http://127.0.0.1:8086'], 'token': TOKEN,
                                             'organization': 'acme', 'bucket': 'metrics'},
        },
        'deb_url': {**PROM, 'telegraf_install_method': 'deb', 'telegraf_deb_url': f'{url}/telegraf_1.32.3-1_amd64.deb'},
        'present': {**PROM, 'telegraf_install_method': 'present', 'telegraf_binary': str(base / 'no' / 'telegraf')},
    }
    tasks = [
        {'name': 'main entry point', 'block': [
            {'ansible.builtin.include_role': {'name': 'goship.deploy.telegraf'}},
            {'ansible.builtin.set_fact': {'test_result': 'ok'}},
        ], 'rescue': [
            {'ansible.builtin.set_fact': {'test_result': '{{ ansible_failed_result.msg }}'}},
        ]},
        save_results_task(base / 'results.json'),
    ]
    apt_before = tree_state('/etc/apt')
    # Debian's own python (python3-apt for the apt module, python3-debian once installed), like a real host
    python = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable
    try:
        proc = run_playbook(base, hosts, tasks, args=('--check', '--diff'), python=python, env={
            'PATH': f"{bin_dir}:{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            'FAKE_SYSTEMCTL_LOG': str(log),
        })
    finally:
        server.shutdown()
    return {
        'proc': proc,
        'apt_before': apt_before,
        'apt_after': tree_state('/etc/apt'),
        'requests': list(server.requests),
        'systemctl': log.read_text().splitlines(),
        'messages': json.loads((base / 'results.json').read_text()) if (base / 'results.json').exists() else {},
    }


def test_check_mode_runs_the_repository_and_deb_paths(check_run):
    proc = check_run['proc']
    assert proc.returncode == 0, output(proc)
    assert check_run['messages']['repository'] == 'ok', output(proc)
    assert check_run['messages']['deb_url'] == 'ok', output(proc)
    assert 'Traceback' not in proc.stdout + proc.stderr


def test_check_mode_changes_nothing(check_run):
    assert check_run['apt_after'] == check_run['apt_before']
    for path in WATCHED:
        assert not os.path.lexists(path), path
    assert not [call for call in check_run['systemctl'] if MUTATING.match(call)], check_run['systemctl']


def test_check_mode_only_asks_the_loopback_urls(check_run):
    # get_url only asks (HEAD) in check mode, at the URL given
    # (the .deb URL is not asked: its directory does not exist yet, so check mode cannot preview the download)
    assert check_run['requests'] == ['HEAD /influx-key.asc']


def test_check_mode_reports_the_deb822_source_it_would_write(check_run):
    stdout = ' '.join(check_run['proc'].stdout.split())
    if 'check mode: the apt source is not in place yet' not in stdout:
        pytest.skip('python3-debian is installed here: deb822_repository ran in check mode instead')
    for fragment in ['/etc/apt/sources.list.d/influxdata.sources', 'Types: deb,',
                     'URIs: https://mirror.example.invalid/influxdata/debian,', 'Suites: bookworm,',
                     'Components: main extra,', 'Signed-By: /etc/apt/keyrings/custom-influx.asc',
                     'install telegraf=1.32.3-1']:
        assert fragment in stdout, fragment


def test_check_mode_diff_shows_the_config_without_the_token(check_run):
    stdout = check_run['proc'].stdout
    assert '+  token = "${INFLUX_TOKEN}"' in stdout
    assert '+[[outputs.influxdb_v2]]' in stdout
    assert TOKEN not in stdout + check_run['proc'].stderr
    assert 'inf1ux-T0ken' not in stdout + check_run['proc'].stderr


def test_present_without_the_binary_fails_with_a_message(check_run):
    message = check_run['messages']['present']
    assert 'is not an executable file' in message
    assert 'telegraf_install_method: present the role installs nothing' in message
