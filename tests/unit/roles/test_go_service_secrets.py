# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""goship.deploy.go_service secrets: values from variables, SSM Parameter Store (SecureString,
decrypted) and Secrets Manager (moto's server over HTTP on loopback, through the amazon.aws
lookups) land in a 0600 root file, never in `ansible-playbook -vvv` output; a second run changes
nothing; no secrets configured removes the file. Runs the role's secrets phase on this machine."""

from __future__ import annotations

import re
import shlex
import stat
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


def secrets_play(config_dir, aws, with_secrets=True):
    role_vars = {
        'go_service_name': 'gsunit-secrets',
        'go_service_config_dir': str(config_dir),
        'go_service_secrets': {'PLAIN_TOKEN': VALUES['PLAIN_TOKEN']} if with_secrets else {},
        'go_service_secrets_ssm': {'DB_PASSWORD': '/hello-svc/db-password'} if with_secrets else {},
        'go_service_secrets_secretsmanager': {'API_KEY': 'hello-svc/api-key'} if with_secrets else {},
        'go_service_secrets_aws': aws,
    }
    return [{'name': 'go_service secrets', 'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        {'ansible.builtin.include_role': {'name': 'goship.deploy.go_service', 'tasks_from': 'secrets'},
         'vars': role_vars}]}]


def run(tmp_path, play, name):
    return run_plays(tmp_path, play, ['-i', 'localhost,', '-c', 'local', '-e',
                                      f'ansible_python_interpreter={sys.executable}'],
                     args=['-vvv'], env=ansible_env(AWS_CONFIG_FILE='/dev/null', AWS_SHARED_CREDENTIALS_FILE='/dev/null'),
                     name=name, timeout=300)


def changed(proc):
    match = re.search(r'^localhost\s*:.*changed=(\d+).*failed=(\d+)', proc.stdout, re.M)
    assert match and match.group(2) == '0', output(proc)
    return int(match.group(1))


def parse_env_file(text):
    pairs = {}
    for line in text.splitlines():
        if line and not line.startswith('#'):
            name, _sep, value = line.partition('=')
            pairs[name] = shlex.split(value)[0]
    return pairs


def test_secrets_from_variables_ssm_and_secrets_manager(tmp_path, moto_url):
    config_dir = tmp_path / 'etc'
    config_dir.mkdir()
    aws = dict(CONN, endpoint_url=moto_url)
    first = run(tmp_path, secrets_play(config_dir, aws), 'first.yml')
    assert changed(first) == 1
    secrets = config_dir / 'secrets.env'
    assert parse_env_file(secrets.read_text()) == VALUES
    mode = secrets.stat()
    assert stat.S_IMODE(mode.st_mode) == 0o600 and mode.st_uid == 0
    # -vvv shows every task's arguments and results, but not these.
    for value in VALUES.values():
        assert value not in first.stdout and value not in first.stderr

    again = run(tmp_path, secrets_play(config_dir, aws), 'again.yml')
    assert changed(again) == 0

    removed = run(tmp_path, secrets_play(config_dir, aws, with_secrets=False), 'removed.yml')
    assert changed(removed) == 1
    assert not secrets.exists()


def test_a_missing_parameter_fails_without_writing(tmp_path, moto_url):
    config_dir = tmp_path / 'etc'
    config_dir.mkdir()
    play = secrets_play(config_dir, dict(CONN, endpoint_url=moto_url))
    play[0]['tasks'][0]['vars']['go_service_secrets_ssm'] = {'DB_PASSWORD': '/hello-svc/missing'}
    proc = run(tmp_path, play, 'missing.yml')
    assert re.search(r'^localhost\s*:.*failed=1', proc.stdout, re.M), output(proc)
    assert not (config_dir / 'secrets.env').exists()
    assert 'Traceback' not in proc.stdout
