# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for the goship.deploy.s3_artifact module: arguments, and the glue around the logic.

1. Argument validation runs the module for real through ``ansible-playbook`` on localhost.
   Validation happens before any AWS call, so no endpoint is needed; every task points
   at http://127.0.0.1:9 (nothing listens there), so a task that wrongly got past
   validation would fail with a different message.  All cases run in one playbook.
2. The module's glue (check mode, diff, file attributes, result and error fields) runs
   in-process against moto's in-process S3 mock.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from moto import mock_aws

from ansible.module_utils.testing import patch_module_args

import ansible_collections.goship.deploy.plugins.module_utils.s3_artifact as sa_utils
from ansible_collections.goship.deploy.plugins.modules import s3_artifact as module

ANSIBLE_PLAYBOOK = Path(sys.executable).parent / 'ansible-playbook'
UNREACHABLE = 'http://127.0.0.1:9'
SECRET = 'Sup3r-Secret-Value-never-logged'
DIGEST = hashlib.sha256(b'x').hexdigest()
AWS_ENV = ('AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_URL', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_PROFILE',
           'AWS_DEFAULT_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_ACCESS_KEY', 'AWS_SECRET_ACCESS_KEY', 'AWS_SECRET_KEY',
           'AWS_SESSION_TOKEN', 'AWS_CA_BUNDLE')


def collections_root():
    """Directory containing ansible_collections/goship/deploy (the import path in use)."""
    here = Path(sa_utils.__file__).absolute()
    candidate = here.parents[5]
    if (candidate / 'ansible_collections' / 'goship' / 'deploy').is_dir():
        return candidate
    return Path(__file__).resolve().parents[4] / '.collections'


def clean_aws_environ(tmp_path):
    environ = dict(os.environ)
    for name in AWS_ENV:
        environ.pop(name, None)
    environ.update(AWS_CONFIG_FILE=str(tmp_path / 'aws-config'), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / 'aws-creds'),
                   AWS_EC2_METADATA_DISABLED='true')
    return environ


# name, module args, task keywords, fragments expected in msg
BASE = dict(bucket='goship-artifacts', key='app/1.0/app_1.0_amd64.deb', endpoint_url=UNREACHABLE, region='us-east-1',
            access_key='AKIDEXAMPLE', secret_key=SECRET)
CASES = [
    ('present needs src', dict(state='present'), {}, ['state is present but all of the following are missing: src']),
    ('fetched needs dest', dict(state='fetched'), {}, ['state is fetched but all of the following are missing: dest']),
    ('promoted needs source', dict(state='promoted'), {},
     ['state is promoted but all of the following are missing: source']),
    ('unknown state', dict(state='uploaded', src='/etc/hostname'), {}, ['value of state must be one of']),
    ('unknown encryption', dict(src='/etc/hostname', encryption='DES'), {}, ['value of encryption must be one of']),
    ('kms key without kms', dict(src='/etc/hostname', kms_key_id='alias/x'), {},
     ['kms_key_id is only used with encryption=aws:kms (encryption is AES256)']),
    ('kms key with none', dict(src='/etc/hostname', encryption='none', kms_key_id='alias/x'), {},
     ['kms_key_id is only used with encryption=aws:kms (encryption is none)']),
    ('src with fetched', dict(state='fetched', dest='/tmp/x', src='/etc/hostname'), {},
     ['src is not used with state=fetched (only with present)']),
    ('version_id with present', dict(src='/etc/hostname', version_id='v1'), {},
     ['version_id is not used with state=present (only with fetched, absent)']),
    ('source with present', dict(src='/etc/hostname', source=dict(bucket='b')), {},
     ['source is not used with state=present (only with promoted)']),
    ('mode with present', dict(src='/etc/hostname', mode='0644'), {},
     ['mode is not used with state=present (only with fetched)']),
    ('metadata with listed', dict(state='listed', metadata=dict(version='1')), {},
     ['metadata is not used with state=listed']),
    ('force with absent', dict(state='absent', force=True), {}, ['force is not used with state=absent']),
    ('bad sha256', dict(state='fetched', dest='/tmp/x', sha256='abc'), {},
     ["sha256 must be a SHA-256 hex digest (64 characters 0-9a-f), got 'abc'"]),
    ('sha256 in metadata', dict(src='/etc/hostname', metadata=dict(sha256=DIGEST)), {},
     ['metadata.sha256 is set by s3_artifact itself']),
    ('non-ascii metadata', dict(src='/etc/hostname', metadata=dict(commit=u'caf\u00e9')), {},
     ['metadata.commit must be ASCII']),
    ('too many tags', dict(src='/etc/hostname', tags=dict(('t%d' % i, 'v') for i in range(11))), {},
     ['S3 allows at most 10 tags per object, got 11']),
    ('tiny parts', dict(src='/etc/hostname', multipart_chunk_mb=1), {},
     ['multipart_chunk_mb must be between 5 and 5120']),
    ('no concurrency', dict(src='/etc/hostname', max_concurrency=0), {}, ['max_concurrency must be between 1 and 64']),
    ('key ending in slash', dict(src='/etc/hostname', key='app/1.0/'), {}, ['ends with "/"']),
    ('profile and keys', dict(state='listed', profile='prod'), {},
     ['profile (prod) and access keys are both set']),
    ('access key alone', dict(state='listed', secret_key=None), {},
     ['access_key is set but secret_key is not: give both']),
    ('endpoint without scheme', dict(state='listed', endpoint_url='127.0.0.1:9'), {},
     ["endpoint_url must start with http:// or https://, got '127.0.0.1:9'"]),
    ('source profile and keys', dict(state='promoted', source=dict(bucket='b', profile='staging', access_key='AKID2',
                                                                   secret_key='s2')), {},
     ['source.profile (staging) and access keys are both set']),
    ('source without bucket', dict(state='promoted', source=dict(key='k')), {},
     ['missing required arguments: bucket found in source']),
    ('unknown option', dict(state='listed', colour='blue'), {}, ['Unsupported parameters', 'colour']),
    ('group defaults reach the module', dict(state='listed', access_key=None, secret_key=None),
     {'module_defaults': {'group/goship.deploy.aws': {'access_key': 'AKIDFROMGROUP'}}},
     ['access_key is set but secret_key is not']),
    ('aliases are accepted', dict(state='listed', access_key=None, secret_key=None, aws_access_key_id='AKID',
                                  aws_secret_access_key=SECRET, aws_region='eu-west-1', s3_url='ftp://x'), {},
     ["endpoint_url must start with http:// or https://, got 'ftp://x'"]),
    ('unreachable endpoint fails fast with a clear message', dict(state='listed'), {},
     ['cannot connect to http://127.0.0.1:9 (2 attempts, 5 s connect timeout each)', 'check endpoint_url']),
]


def case_args(args):
    """BASE updated with a case's args; None removes an option (an alias replaces its option)."""
    merged = dict(BASE)
    merged.update(args)
    if 's3_url' in args:
        merged.pop('endpoint_url')
    if 'aws_region' in args:
        merged.pop('region')
    return dict((k, v) for k, v in merged.items() if v is not None)


@pytest.fixture(scope='module')
def validation_run(tmp_path_factory):
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip('ansible-playbook is not next to python')
    work = tmp_path_factory.mktemp('s3_artifact_args')
    tasks = []
    for index, (name, args, keywords, _fragments) in enumerate(CASES):
        task = {'name': name, 'goship.deploy.s3_artifact': case_args(args), 'register': 'r%d' % index,
                'ignore_errors': True}
        task.update(keywords)
        tasks.append(task)
    results = work / 'results.json'
    content = '{{ {%s} | to_json }}' % ', '.join("'%d': r%d" % (i, i) for i in range(len(CASES)))
    tasks.append({'name': 'save results', 'ansible.builtin.copy': {'content': content, 'dest': str(results)}})
    playbook = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]
    (work / 'playbook.yml').write_text(json.dumps(playbook))
    environ = clean_aws_environ(work)
    environ.pop('ANSIBLE_CONFIG', None)
    environ.update({
        'ANSIBLE_COLLECTIONS_PATH': str(collections_root()),
        'ANSIBLE_HOME': str(work / '.ansible'),
        'ANSIBLE_LOCAL_TEMP': str(work / '.ansible' / 'tmp'),
        'ANSIBLE_REMOTE_TEMP': str(work / '.ansible' / 'remote'),
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_RETRY_FILES_ENABLED': '0',
        'ANSIBLE_STDOUT_CALLBACK': 'default',
        'ANSIBLE_DEPRECATION_WARNINGS': '0',
    })
    cmd = [str(ANSIBLE_PLAYBOOK), '-i', 'localhost,', '-c', 'local',
           '-e', 'ansible_python_interpreter=%s' % sys.executable, str(work / 'playbook.yml')]
    proc = subprocess.run(cmd, cwd=str(work), env=environ, capture_output=True, text=True, timeout=300,
                          check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    data = json.loads(results.read_text())
    return dict((int(k), v) for k, v in data.items()), output


@pytest.mark.parametrize('index', range(len(CASES)), ids=[case[0] for case in CASES])
def test_invalid_arguments_fail_with_a_clear_message(validation_run, index):
    results, output = validation_run
    name, _args, _keywords, fragments = CASES[index]
    result = results[index]
    assert result.get('failed') is True, result
    for fragment in fragments:
        assert fragment in result['msg'], result['msg']
    assert 'Traceback' not in result['msg']


def test_validation_output_has_no_traceback_and_no_secret(validation_run):
    results, output = validation_run
    assert 'Traceback' not in output
    assert SECRET not in output
    assert SECRET not in json.dumps(results)


# ------------------------------------------------------------------------------------------ in-process glue

BUCKET = 'artifacts'
KEY = 'hello-svc/1.214/hello-svc_1.214_amd64.deb'


@pytest.fixture
def s3(monkeypatch, tmp_path):
    for name in AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('AWS_CONFIG_FILE', str(tmp_path / 'aws-config'))
    with mock_aws():
        import boto3
        client = boto3.client('s3', region_name='us-east-1', aws_access_key_id='testing',
                              aws_secret_access_key='testing')
        for bucket in (BUCKET, 'production'):
            client.create_bucket(Bucket=bucket)
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={'Status': 'Enabled'})
        yield client


def run_module(tmp_path, args, check=False, diff=False):
    """Run the module in-process (so moto's mock applies); returns its JSON result."""
    full = dict(region='us-east-1', access_key='testing', secret_key='testing')
    full.update(args)
    full.update(_ansible_check_mode=check, _ansible_diff=diff, _ansible_remote_tmp=str(tmp_path / 'remote'),
                _ansible_keep_remote_files=False)
    out = io.StringIO()
    with patch_module_args(full), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(out.getvalue())


@pytest.fixture
def artifact(tmp_path):
    path = tmp_path / 'hello-svc_1.214_amd64.deb'
    path.write_bytes(b'build 1')
    return path


def test_present_check_diff_then_upload_then_unchanged(s3, tmp_path, artifact):
    args = dict(bucket=BUCKET, key=KEY, src=str(artifact), metadata={'version': '1.214'})
    preview = run_module(tmp_path, args, check=True, diff=True)
    assert preview['changed'] is True and preview['version_id'] is None
    assert preview['diff']['before'] == ''
    assert 'sha256: %s' % hashlib.sha256(b'build 1').hexdigest() in preview['diff']['after']
    assert 'version_id: (new version)' in preview['diff']['after']
    assert 'Versions' not in s3.list_object_versions(Bucket=BUCKET)

    done = run_module(tmp_path, args, diff=True)
    assert done['changed'] is True and done['version_id']
    assert 'version_id: %s' % done['version_id'] in done['diff']['after']
    for name in ('bucket', 'key', 'version_id', 'sha256', 'size', 'etag', 'url'):
        assert done[name] is not None, name
    assert 'before' not in done and 'warnings' not in done

    again = run_module(tmp_path, args, diff=True)
    assert again['changed'] is False and again['version_id'] == done['version_id']
    assert again['diff']['before'] == again['diff']['after']


def test_fetched_sets_mode_and_is_idempotent(s3, tmp_path, artifact):
    up = run_module(tmp_path, dict(bucket=BUCKET, key=KEY, src=str(artifact)))
    dest = tmp_path / 'cache'
    dest.mkdir()
    args = dict(state='fetched', bucket=BUCKET, key=KEY, dest=str(dest), mode='0640')
    first = run_module(tmp_path, args, diff=True)
    target = dest / os.path.basename(KEY)
    assert first['changed'] is True and first['dest'] == str(target)
    assert first['version_id'] == up['version_id'] and first['sha256_source'] == 'metadata'
    assert target.read_bytes() == b'build 1' and target.stat().st_mode & 0o777 == 0o640
    assert run_module(tmp_path, args)['changed'] is False
    # Same bytes, other mode: only the mode changes (no download: the inode stays).
    inode = target.stat().st_ino
    changed = run_module(tmp_path, dict(args, mode='0600'))
    assert changed['changed'] is True and target.stat().st_mode & 0o777 == 0o600 and target.stat().st_ino == inode
    preview = run_module(tmp_path, dict(args, mode='0644'), check=True)
    assert preview['changed'] is True and target.stat().st_mode & 0o777 == 0o600


def test_fetched_mismatch_reports_both_hashes_and_keeps_dest(s3, tmp_path, artifact):
    run_module(tmp_path, dict(bucket=BUCKET, key=KEY, src=str(artifact)))
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b'tampered', Metadata={'sha256': hashlib.sha256(b'build 1').hexdigest()})
    dest = tmp_path / 'app.deb'
    dest.write_bytes(b'running release')
    result = run_module(tmp_path, dict(state='fetched', bucket=BUCKET, key=KEY, dest=str(dest)))
    assert result['failed'] is True and result['changed'] is False
    assert result['expected_sha256'] == hashlib.sha256(b'build 1').hexdigest()
    assert result['actual_sha256'] == hashlib.sha256(b'tampered').hexdigest()
    assert result['expected_sha256'] in result['msg'] and result['actual_sha256'] in result['msg']
    assert dest.read_bytes() == b'running release'
    assert sorted(set(os.listdir(str(tmp_path))) - {'remote'}) == sorted(['app.deb', artifact.name])
    assert 'exception' not in result


def test_listed_promoted_and_absent(s3, tmp_path, artifact):
    first = run_module(tmp_path, dict(bucket=BUCKET, key=KEY, src=str(artifact)))
    artifact.write_bytes(b'build 2')
    second = run_module(tmp_path, dict(bucket=BUCKET, key=KEY, src=str(artifact)))
    listed = run_module(tmp_path, dict(state='listed', bucket=BUCKET, key=KEY), check=True)
    assert [v['version_id'] for v in listed['versions']] == [second['version_id'], first['version_id']]
    assert listed['changed'] is False

    promoted = run_module(tmp_path, dict(state='promoted', bucket='production', key=KEY,
                                         source=dict(bucket=BUCKET, version_id=first['version_id'])), diff=True)
    assert promoted['changed'] is True and promoted['method'] == 'copy' and promoted['verified'] is True
    assert promoted['sha256'] == first['sha256']
    assert s3.get_object(Bucket='production', Key=KEY)['Body'].read() == b'build 1'
    again = run_module(tmp_path, dict(state='promoted', bucket='production', key=KEY,
                                      source=dict(bucket=BUCKET, version_id=first['version_id'])))
    assert again['changed'] is False
    # Other source credentials: streamed through the host.
    streamed = run_module(tmp_path, dict(state='promoted', bucket='production', key='other/' + KEY,
                                         source=dict(bucket=BUCKET, key=KEY, access_key='staging', secret_key='x')))
    assert streamed['method'] == 'stream' and streamed['sha256'] == second['sha256']

    preview = run_module(tmp_path, dict(state='absent', bucket=BUCKET, key=KEY), check=True, diff=True)
    assert preview['changed'] is True and 'sha256: %s' % second['sha256'] in preview['diff']['before']
    assert s3.head_object(Bucket=BUCKET, Key=KEY)['VersionId'] == second['version_id']
    gone = run_module(tmp_path, dict(state='absent', bucket=BUCKET, key=KEY, version_id=first['version_id']))
    assert gone['changed'] is True and gone['version_id'] == first['version_id']
    assert run_module(tmp_path, dict(state='absent', bucket=BUCKET, key=KEY,
                                     version_id=first['version_id']))['changed'] is False


def test_aws_errors_become_one_line_messages_with_details(s3, tmp_path, artifact):
    missing = run_module(tmp_path, dict(bucket='no-such-bucket', key=KEY, src=str(artifact)))
    assert missing['failed'] is True
    assert 'bucket no-such-bucket does not exist in region us-east-1' in missing['msg']
    assert missing['error']['code'] == 'NoSuchBucket'
    assert 'exception' not in missing
    no_key = run_module(tmp_path, dict(state='fetched', bucket=BUCKET, key='nope.deb', dest=str(tmp_path / 'x')))
    assert 's3://artifacts/nope.deb does not exist' in no_key['msg']
    source = run_module(tmp_path, dict(state='promoted', bucket='production', key=KEY,
                                       source=dict(bucket='staging-missing', region='eu-west-1')))
    assert 'bucket staging-missing does not exist in region eu-west-1' in source['msg']
    no_metadata = s3.put_object(Bucket=BUCKET, Key='raw.deb', Body=b'raw')
    assert no_metadata['VersionId']
    raw = run_module(tmp_path, dict(state='fetched', bucket=BUCKET, key='raw.deb', dest=str(tmp_path / 'raw.deb')))
    assert 'has no sha256 metadata' in raw['msg'] and not (tmp_path / 'raw.deb').exists()


def test_unexpected_errors_are_one_line_too(s3, tmp_path, artifact, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError('disk on fire')
    monkeypatch.setattr(sa_utils, 'upload', boom)
    result = run_module(tmp_path, dict(bucket=BUCKET, key=KEY, src=str(artifact)))
    assert result['msg'] == ('state=present for s3://artifacts/%s failed unexpectedly: RuntimeError: disk on fire'
                             % KEY)
