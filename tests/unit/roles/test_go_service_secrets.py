# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""goship.deploy.go_service secrets: values from variables, SSM Parameter Store (SecureString,
decrypted) and Secrets Manager (moto's server over HTTP on loopback, through the amazon.aws
lookups) make the release's 0600 root secrets file, never in `ansible-playbook -vvv` output; no
secrets configured removes the file. Runs the role's render entry point on this machine (the
module that writes the file on hosts is tested on the lab: molecule/go_service)."""

from __future__ import annotations

import json
import re
import shlex
import sys

import boto3
import pytest

from role_runner import ANSIBLE_PLAYBOOK, ansible_env, output, run_plays

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason='ansible-playbook not next to python')

VALUES = {
    'PLAIN_TOKEN': 'plain-7f3a91 with spaces',
    'DB_PASSWORD': "ssm-2b8e47'quote",
    'API_KEY': 'sm-9c1d05$dollar',
}
CONN = {'region': 'us-east-1', 'access_key': 'goship-unit', 'secret_key': 'goship-unit-secret'}


@pytest.fixture(scope='module')
def moto_url():
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = 'http://%s:%s' % (host, port)
    client = dict(endpoint_url=url, region_name=CONN['region'], aws_access_key_id=CONN['access_key'],
                  aws_secret_access_key=CONN['secret_key'])
    boto3.client('ssm', **client).put_parameter(Name='/hello-svc/db-password', Value=VALUES['DB_PASSWORD'],
                                                Type='SecureString')
    boto3.client('secretsmanager', **client).create_secret(Name='hello-svc/api-key', SecretString=VALUES['API_KEY'])
    yield url
    server.stop()


def secrets_play(tmp_path, aws, with_secrets=True):
    role_vars = {
        'go_service_name': 'gsunit-secrets',
        'go_service_version': '1.0.0',
        'go_service_host_cache_only': True,   # nothing to fetch: only the files are described
        'go_service_controller_cache_dir': str(tmp_path / 'cache' / 'artifacts'),
        'go_service_secrets': {'PLAIN_TOKEN': VALUES['PLAIN_TOKEN']} if with_secrets else {},
        'go_service_secrets_ssm': {'DB_PASSWORD': '/hello-svc/db-password'} if with_secrets else {},
        'go_service_secrets_secretsmanager': {'API_KEY': 'hello-svc/api-key'} if with_secrets else {},
        'go_service_secrets_aws': aws,
    }
    return [{'name': 'go_service secrets', 'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        {'ansible.builtin.include_role': {'name': 'goship.deploy.go_service', 'tasks_from': 'render'},
         'vars': role_vars},
        {'name': 'Keep the described secrets file', 'no_log': True, 'ansible.builtin.copy': {
            'dest': str(tmp_path / 'secret_files.json'), 'mode': '0600',
            'content': '{{ go_service_release.secret_files | to_json }}'}},
        {'name': 'Keep what the release removes', 'ansible.builtin.copy': {
            'dest': str(tmp_path / 'remove.json'), 'mode': '0600', 'content': '{{ go_service_release.remove | to_json }}'}},
    ]}]


def run(tmp_path, play, name):
    return run_plays(tmp_path, play, ['-i', 'localhost,', '-c', 'local', '-e',
                                      f'ansible_python_interpreter={sys.executable}'],
                     args=['-vvv'], env=ansible_env(AWS_CONFIG_FILE='/dev/null', AWS_SHARED_CREDENTIALS_FILE='/dev/null'),
                     name=name, timeout=300)


def succeeded(proc):
    assert re.search(r'^localhost\s*:.*failed=0', proc.stdout, re.M), output(proc)


def parse_env_file(text):
    pairs = {}
    for line in text.splitlines():
        if line and not line.startswith('#'):
            name, _sep, value = line.partition('=')
            pairs[name] = shlex.split(value)[0]
    return pairs


def test_secrets_from_variables_ssm_and_secrets_manager(tmp_path, moto_url):
    aws = dict(CONN, endpoint_url=moto_url)
    first = run(tmp_path, secrets_play(tmp_path, aws), 'first.yml')
    succeeded(first)
    [secret_file] = json.loads((tmp_path / 'secret_files.json').read_text())
    assert secret_file['path'] == '/etc/gsunit-secrets/secrets.env'
    assert (secret_file['mode'], secret_file['owner'], secret_file['group']) == ('0600', 'root', 'root')
    assert parse_env_file(secret_file['content']) == VALUES
    assert '/etc/gsunit-secrets/secrets.env' not in json.loads((tmp_path / 'remove.json').read_text())
    # -vvv shows every task's arguments and results, but not these.
    for value in VALUES.values():
        assert value not in first.stdout and value not in first.stderr

    removed = run(tmp_path, secrets_play(tmp_path, aws, with_secrets=False), 'removed.yml')
    succeeded(removed)
    assert json.loads((tmp_path / 'secret_files.json').read_text()) == []
    assert '/etc/gsunit-secrets/secrets.env' in json.loads((tmp_path / 'remove.json').read_text())


def test_a_missing_parameter_fails_without_describing_the_release(tmp_path, moto_url):
    play = secrets_play(tmp_path, dict(CONN, endpoint_url=moto_url))
    play[0]['tasks'][0]['vars']['go_service_secrets_ssm'] = {'DB_PASSWORD': '/hello-svc/missing'}
    proc = run(tmp_path, play, 'missing.yml')
    assert re.search(r'^localhost\s*:.*failed=1', proc.stdout, re.M), output(proc)
    assert not (tmp_path / 'secret_files.json').exists()
    assert 'Traceback' not in proc.stdout
