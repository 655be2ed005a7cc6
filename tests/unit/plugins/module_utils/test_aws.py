# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for goship.deploy's shared AWS helpers: options, client factory, error messages.

No AWS endpoint is needed.  The one test that opens a connection goes to 127.0.0.1:9,
where nothing listens, to prove that an unreachable endpoint is given up after two attempts.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSLError,
)

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.goship.deploy.plugins.module_utils import aws
from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError

LAB = dict(region='us-east-1', endpoint_url='http://172.29.77.1:8333', access_key='AKIDEXAMPLE',
           secret_key='wJalrXUtnFEMI/K7MDENG', retries=5)

AWS_ENV = ('AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_URL', 'AWS_ENDPOINT_URL', 'AWS_PROFILE', 'AWS_DEFAULT_PROFILE',
           'AWS_ACCESS_KEY_ID', 'AWS_ACCESS_KEY', 'AWS_SECRET_ACCESS_KEY', 'AWS_SECRET_KEY', 'AWS_SESSION_TOKEN',
           'AWS_CA_BUNDLE', 'AWS_ENDPOINT_URL_S3')


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    # No ~/.aws of the machine running the tests.
    monkeypatch.setenv('AWS_CONFIG_FILE', str(tmp_path / 'config'))
    monkeypatch.setenv('AWS_SHARED_CREDENTIALS_FILE', str(tmp_path / 'credentials'))
    monkeypatch.setenv('AWS_EC2_METADATA_DISABLED', 'true')
    return monkeypatch


def client_error(code, message='', status=400, operation='HeadObject', **extra):
    response = {'Error': dict(Code=code, Message=message, **extra),
                'ResponseMetadata': {'HTTPStatusCode': status, 'RequestId': 'REQ123'}}
    return ClientError(response, operation)


def validate(params):
    return ArgumentSpecValidator(aws.aws_argument_spec()).validate(params)


# --------------------------------------------------------------------------- argument spec

def test_argument_spec_has_amazon_aws_names_aliases_and_secrets_hidden():
    spec = aws.aws_argument_spec()
    assert set(spec) == {'region', 'endpoint_url', 'profile', 'access_key', 'secret_key', 'session_token',
                         'validate_certs', 'aws_ca_bundle', 'retries'}
    assert spec['region']['aliases'] == ['aws_region']
    assert spec['endpoint_url']['aliases'] == ['aws_endpoint_url', 's3_url']
    assert spec['profile']['aliases'] == ['aws_profile']
    assert spec['access_key']['aliases'] == ['aws_access_key_id', 'aws_access_key']
    assert spec['secret_key']['aliases'] == ['aws_secret_access_key', 'aws_secret_key']
    for name in ('secret_key', 'session_token'):
        assert spec[name]['no_log'] is True, name
    # The access key id is an identifier (shown by AWS in logs and consoles), as in amazon.aws.
    assert spec['access_key']['no_log'] is False
    assert spec['validate_certs']['default'] is True
    assert spec['retries'] == dict(type='int', default=5)


def test_aws_argument_spec_returns_a_copy_extended_by_the_module():
    spec = aws.aws_argument_spec(bucket=dict(type='str', required=True))
    spec['retries']['default'] = 1
    spec['region']['aliases'].append('oops')
    assert aws.AWS_COMMON_ARGUMENT_SPEC['retries']['default'] == 5
    assert aws.AWS_COMMON_ARGUMENT_SPEC['region']['aliases'] == ['aws_region']
    assert spec['bucket'] == dict(type='str', required=True)


@pytest.mark.parametrize('env, expected', [
    ({'AWS_REGION': 'eu-west-1', 'AWS_DEFAULT_REGION': 'us-east-2'}, {'region': 'eu-west-1'}),
    ({'AWS_DEFAULT_REGION': 'us-east-2'}, {'region': 'us-east-2'}),
    ({'AWS_URL': 'http://127.0.0.1:8333'}, {'endpoint_url': 'http://127.0.0.1:8333'}),
    ({'AWS_ENDPOINT_URL': 'http://127.0.0.1:8334'}, {'endpoint_url': 'http://127.0.0.1:8334'}),
    ({'AWS_PROFILE': 'staging'}, {'profile': 'staging'}),
    ({'AWS_ACCESS_KEY_ID': 'AKID', 'AWS_SECRET_ACCESS_KEY': 'sekrit', 'AWS_SESSION_TOKEN': 'tok'},
     {'access_key': 'AKID', 'secret_key': 'sekrit', 'session_token': 'tok'}),
    ({'AWS_CA_BUNDLE': '/etc/ssl/lab.pem'}, {'aws_ca_bundle': '/etc/ssl/lab.pem'}),
])
def test_environment_fallbacks(clean_env, env, expected):
    for name, value in env.items():
        clean_env.setenv(name, value)
    result = validate({})
    assert not result.error_messages
    for name, value in expected.items():
        assert result.validated_parameters[name] == value


def test_options_win_over_environment_and_aliases_work(clean_env):
    clean_env.setenv('AWS_REGION', 'eu-west-1')
    result = validate({'aws_region': 'ap-south-1', 's3_url': 'http://127.0.0.1:1', 'aws_secret_key': 'x',
                       'aws_access_key_id': 'y'})
    params = result.validated_parameters
    assert (params['region'], params['endpoint_url'], params['secret_key'], params['access_key']) == \
        ('ap-south-1', 'http://127.0.0.1:1', 'x', 'y')
    assert 'x' in result._no_log_values          # the secret key is masked in output
    assert 'y' not in result._no_log_values      # the access key id is not


# --------------------------------------------------------------------------- connection checks

@pytest.mark.parametrize('params, fragment', [
    (dict(profile='prod', access_key='AKID', secret_key='s'), 'profile (prod) and access keys are both set'),
    (dict(profile='prod', session_token='t'), 'profile (prod) and access keys are both set'),
    (dict(access_key='AKID'), 'access_key is set but secret_key is not'),
    (dict(secret_key='s'), 'secret_key is set but access_key is not'),
    (dict(session_token='t', secret_key='s', access_key=None), 'secret_key is set but access_key is not'),
    (dict(retries=-1), 'retries must be between 0 and 20'),
    (dict(retries=99), 'retries must be between 0 and 20'),
    (dict(endpoint_url='172.29.77.1:8333'), 'endpoint_url must start with http:// or https://'),
])
def test_contradictory_connection_options_are_refused(params, fragment):
    with pytest.raises(aws.ConnectionConfigError) as info:
        aws.check_connection_params(params)
    assert fragment in str(info.value)


def test_connection_errors_name_the_nested_option():
    with pytest.raises(aws.ConnectionConfigError, match=r'^source\.access_key is set'):
        aws.check_connection_params(dict(access_key='AKID'), 'source')


def test_session_token_needs_keys():
    with pytest.raises(aws.ConnectionConfigError, match='session_token needs access_key'):
        aws.check_connection_params(dict(session_token='t'))


def test_valid_connection_options_pass():
    aws.check_connection_params(LAB)
    aws.check_connection_params(dict(profile='prod', region='eu-west-1'))
    aws.check_connection_params({})


def test_nested_connection_inherits_settings_one_by_one_but_credentials_as_a_group():
    parent = dict(LAB, profile=None, session_token=None, validate_certs=True, aws_ca_bundle=None)
    # Nothing set: everything from the parent.
    assert aws.inherit_connection({}, parent) == parent
    # Own region, parent's endpoint and keys.
    mixed = aws.inherit_connection(dict(region='eu-west-1'), parent)
    assert mixed['region'] == 'eu-west-1' and mixed['endpoint_url'] == LAB['endpoint_url']
    assert mixed['access_key'] == LAB['access_key']
    # Own profile: none of the parent's keys leak in.
    staged = aws.inherit_connection(dict(profile='staging'), parent)
    assert staged['profile'] == 'staging'
    assert staged['access_key'] is None and staged['secret_key'] is None
    assert staged['endpoint_url'] == LAB['endpoint_url']
    # validate_certs=False is a value, not "unset".
    assert aws.inherit_connection(dict(validate_certs=False), parent)['validate_certs'] is False


def test_same_connection_compares_endpoint_and_credentials_only():
    assert aws.same_connection(LAB, dict(LAB, region='eu-west-1'))
    assert aws.same_connection(LAB, dict(LAB, endpoint_url=LAB['endpoint_url'] + '/'))
    assert not aws.same_connection(LAB, dict(LAB, endpoint_url='http://127.0.0.1:8333'))
    assert not aws.same_connection(LAB, dict(LAB, access_key='OTHER'))
    assert not aws.same_connection(LAB, dict(LAB, access_key=None, secret_key=None, profile='x'))


# --------------------------------------------------------------------------- client factory

def test_client_is_configured_for_retries_timeouts_and_path_style(clean_env):
    s3 = aws.client('s3', dict(LAB, retries=3), max_pool_connections=12)
    config = s3.meta.config
    assert config.retries['mode'] == 'standard'
    # botocore turns max_attempts (retries) into total_max_attempts (retries + first try).
    assert config.retries.get('total_max_attempts', config.retries.get('max_attempts')) in (3, 4)
    assert config.connect_timeout == aws.CONNECT_TIMEOUT
    assert config.read_timeout == aws.READ_TIMEOUT
    assert config.s3 == {'addressing_style': 'path'}
    assert config.max_pool_connections == 12
    assert aws.USER_AGENT in config.user_agent_extra
    assert s3.meta.endpoint_url == LAB['endpoint_url']
    assert s3.meta.region_name == 'us-east-1'
    credentials = s3._request_signer._credentials
    assert credentials.access_key == LAB['access_key'] and credentials.secret_key == LAB['secret_key']


def test_client_without_endpoint_uses_aws_and_virtual_hosting(clean_env):
    s3 = aws.client('s3', dict(region='eu-central-1', access_key='A', secret_key='B'))
    assert 'amazonaws.com' in s3.meta.endpoint_url
    assert not (s3.meta.config.s3 or {}).get('addressing_style')


def test_client_tls_settings(clean_env, tmp_path):
    bundle = tmp_path / 'ca.pem'
    bundle.write_text('')
    insecure = aws.client('s3', dict(LAB, endpoint_url='https://127.0.0.1:1', validate_certs=False))
    assert insecure._endpoint.http_session._verify is False
    pinned = aws.client('s3', dict(LAB, endpoint_url='https://127.0.0.1:1', aws_ca_bundle=str(bundle)))
    assert pinned._endpoint.http_session._verify == str(bundle)


def test_client_with_unknown_profile_raises_profile_not_found(clean_env):
    with pytest.raises(ProfileNotFound) as info:
        aws.client('s3', dict(profile='does-not-exist', region='us-east-1'))
    msg = aws.describe_error(info.value, 'upload x', params=dict(profile='does-not-exist'))
    assert 'profile does-not-exist is not in ~/.aws/config' in msg


def test_client_refuses_profile_and_keys_together(clean_env):
    with pytest.raises(aws.ConnectionConfigError):
        aws.client('s3', dict(profile='p', access_key='a', secret_key='b'))


def test_unreachable_endpoint_is_given_up_after_two_attempts(clean_env):
    s3 = aws.client('s3', dict(LAB, endpoint_url='http://127.0.0.1:9', retries=5))
    attempts = []
    s3.meta.events.register('before-send.s3', lambda **kwargs: attempts.append(1))
    with pytest.raises(EndpointConnectionError) as info:
        s3.head_object(Bucket='b', Key='k')
    # retries=5 would mean 6 attempts for throttling; a refused connection stops at 2.
    assert len(attempts) == aws.CONNECT_ATTEMPTS
    msg = aws.describe_error(info.value, 'read s3://b/k', params=dict(LAB, endpoint_url='http://127.0.0.1:9'))
    assert 'cannot connect to http://127.0.0.1:9 (2 attempts, 5 s connect timeout each)' in msg
    assert 'check endpoint_url' in msg


def test_connect_limit_leaves_other_errors_to_the_standard_retry_handler():
    assert aws._limit_connect_attempts(attempts=5, caught_exception=None) is None
    assert aws._limit_connect_attempts(attempts=1, caught_exception=EndpointConnectionError(endpoint_url='x')) is None
    with pytest.raises(ConnectTimeoutError):
        aws._limit_connect_attempts(attempts=2, caught_exception=ConnectTimeoutError(endpoint_url='x'))


# --------------------------------------------------------------------------- error mapping

@pytest.mark.parametrize('code, status, kwargs, fragments', [
    ('NoSuchBucket', 404, {}, ['bucket goship-artifacts does not exist in region us-east-1 at http://172.29.77.1:8333',
                               'create it or check the bucket name (goship_artifact_bucket)', 'NoSuchBucket',
                               'request id REQ123']),
    ('NoSuchKey', 404, {}, ['s3://goship-artifacts/app/1/app.deb does not exist', 'check the key']),
    ('404', 404, {}, ['s3://goship-artifacts/app/1/app.deb does not exist']),
    ('404', 404, {'version_id': 'v9'}, ['version v9 of s3://goship-artifacts/app/1/app.deb does not exist',
                                        'state=listed']),
    ('NoSuchVersion', 404, {'version_id': 'v9'}, ['version v9 of s3://goship-artifacts/app/1/app.deb does not exist']),
    ('MethodNotAllowed', 405, {'version_id': 'v9'}, ['is a delete marker']),
    ('AccessDenied', 403, {}, ['access denied to s3://goship-artifacts/app/1/app.deb for access key AKIDEXAMPLE',
                               'IAM and bucket policy']),
    ('403', 403, {}, ['access denied']),
    ('InvalidAccessKeyId', 403, {}, ['access key AKIDEXAMPLE is not known to http://172.29.77.1:8333',
                                     'check access_key (AWS_ACCESS_KEY_ID)']),
    ('SignatureDoesNotMatch', 403, {}, ['the secret key does not belong to access key AKIDEXAMPLE',
                                        'check secret_key / AWS_SECRET_ACCESS_KEY']),
    ('ExpiredToken', 400, {}, ['have expired', 'refresh']),
    ('BadDigest', 400, {}, ['different checksum', 'changed while it was being uploaded', 'run the task again']),
    ('XAmzContentSHA256Mismatch', 400, {}, ['different checksum']),
    ('KMS.NotFoundException', 400, {'sse': 'aws:kms'}, ['server-side encryption aws:kms was refused', 'kms_key_id']),
    ('SlowDown', 503, {}, ['kept throttling the requests after 5 retries']),
    ('InternalError', 500, {}, ['server error after 5 retries']),
    ('PermanentRedirect', 301, {}, ['is not in region us-east-1', "set region to the bucket's region"]),
    ('InvalidBucketName', 400, {}, ["'goship-artifacts' is not a valid bucket name"]),
    ('Teapot', 418, {}, ['upload it failed for s3://goship-artifacts/app/1/app.deb: short and stout', 'Teapot']),
])
def test_client_errors_become_actionable_messages(code, status, kwargs, fragments):
    sse = kwargs.pop('sse', None)
    exc = client_error(code, 'short and stout' if code == 'Teapot' else 'm', status)
    msg = aws.describe_error(exc, 'upload it', bucket='goship-artifacts', key='app/1/app.deb', params=LAB,
                             sse=sse, **kwargs)
    assert msg.startswith('upload it failed')
    for fragment in fragments:
        assert fragment in msg, msg
    assert LAB['secret_key'] not in msg


def test_sse_refusal_is_recognised_only_when_encryption_was_requested():
    exc = client_error('InvalidRequest', 'Server Side Encryption with AES256 is not supported', 400, 'PutObject')
    msg = aws.describe_error(exc, 'upload a', bucket='b', key='k', params=LAB, sse='AES256')
    assert 'does not accept server-side encryption AES256' in msg and 'encryption=none' in msg
    plain = aws.describe_error(exc, 'upload a', bucket='b', key='k', params=LAB, sse=None)
    assert 'encryption=none' not in plain
    not_implemented = aws.describe_error(client_error('NotImplemented', 'A header you provided implies '
                                                      'functionality that is not implemented', 501),
                                         'upload a', bucket='b', key='k', params=LAB, sse='AES256')
    assert 'encryption=none' in not_implemented


def test_wrong_region_names_the_bucket_region_when_s3_says_it():
    exc = client_error('AuthorizationHeaderMalformed', 'region is wrong', 400, Region='eu-west-1')
    assert 'set region to eu-west-1' in aws.describe_error(exc, 'read', bucket='b', params=LAB)


def test_messages_without_connection_context_still_read_well():
    msg = aws.describe_error(client_error('NoSuchBucket', status=404), 'list versions', bucket='b')
    assert msg.startswith('list versions failed: bucket b does not exist in region the default region at the '
                          'AWS endpoint')
    assert 'the default credentials' in aws.describe_error(client_error('AccessDenied', status=403), 'read', bucket='b')
    assert 'profile prod' in aws.describe_error(client_error('AccessDenied', status=403), 'read', bucket='b',
                                                params=dict(profile='prod'))


@pytest.mark.parametrize('exc, fragments', [
    (EndpointConnectionError(endpoint_url='http://127.0.0.1:9/b/k'),
     ['cannot connect to http://127.0.0.1:9 ', 'check endpoint_url (AWS_URL)']),
    (ConnectTimeoutError(endpoint_url='http://10.0.0.1:8333/b'), ['cannot connect to http://10.0.0.1:8333 ']),
    (NoCredentialsError(), ['no AWS credentials found', 'AWS_ACCESS_KEY_ID', 'instance role']),
    (PartialCredentialsError(provider='env', cred_var='AWS_SECRET_ACCESS_KEY'), ['incomplete AWS credentials']),
    (NoRegionError(), ['no region: set region (or AWS_REGION']),
    (ProfileNotFound(profile='ghost'), ['profile ghost is not in ~/.aws/config']),
    (ReadTimeoutError(endpoint_url='http://x'), ['did not answer within 60 s']),
    (SSLError(endpoint_url='https://x', error='certificate verify failed'), ['TLS error', 'aws_ca_bundle']),
    (aws.ConnectionConfigError('profile and keys'), ['profile and keys']),
    (ValueError('odd'), ['do it failed: ValueError: odd']),
])
def test_other_exceptions_become_actionable_messages(exc, fragments):
    msg = aws.describe_error(exc, 'do it', params=dict(region='us-east-1'))
    for fragment in fragments:
        assert fragment in msg, msg
    assert 'Traceback' not in msg


def test_error_details_are_machine_readable():
    details = aws.error_details(client_error('NoSuchKey', 'gone', 404, 'GetObject'))
    assert details == dict(type='ClientError', code='NoSuchKey', message='gone', http_status=404,
                           request_id='REQ123', operation='GetObject')
    assert aws.error_details(NoRegionError()) == dict(type='NoRegionError')
    assert aws.error_code(client_error('SlowDown', status=503)) == 'SlowDown'
    assert aws.error_code(ValueError()) is None


class FakeModule(object):
    def __init__(self):
        self.failed = None

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise SystemExit(1)


def test_missing_boto3_fails_with_the_standard_message(monkeypatch):
    monkeypatch.setattr(aws, 'HAS_BOTO3', False)
    monkeypatch.setattr(aws, 'BOTO3_IMPORT_ERROR', 'Traceback: No module named boto3')
    module = FakeModule()
    with pytest.raises(SystemExit):
        aws.require_boto3(module)
    assert 'boto3 and botocore' in module.failed['msg']
    assert module.failed['exception'].startswith('Traceback')


def test_present_boto3_does_not_fail():
    module = FakeModule()
    aws.require_boto3(module)
    assert module.failed is None


# --------------------------------------------------------------------------- the one wrapper for AWS calls


@pytest.fixture
def s3(clean_env):
    """A real S3 client (no request leaves the process: Stubber or a refused port)."""
    import boto3
    return boto3.client('s3', region_name='us-east-1', aws_access_key_id='AKIDEXAMPLE', aws_secret_access_key='x')


def test_wrapper_turns_a_client_error_into_a_goship_error_naming_the_operation(s3):
    from botocore.stub import Stubber
    with Stubber(s3) as stubber:
        stubber.add_client_error('head_bucket', service_error_code='AccessDenied', service_message='no',
                                 http_status_code=403)
        with pytest.raises(aws.AWSError) as info:
            aws.AWSErrorHandler(LAB, service='S3').call('check bucket b', s3.head_bucket, Bucket='b')
    err = info.value
    assert isinstance(err, GoshipError) and isinstance(err.exc, ClientError)
    assert err.operation == 'HeadBucket' and err.code == 'AccessDenied'
    assert err.message.startswith('check bucket b failed: access denied')
    result = err.result()
    assert result['msg'] == err.message
    assert result['error']['code'] == 'AccessDenied' and result['error']['operation'] == 'HeadBucket'
    assert result['error']['http_status'] == 403


def test_wrapper_turns_a_botocore_error_into_a_goship_error_naming_the_operation(s3):
    unreachable = dict(LAB, endpoint_url='http://127.0.0.1:9', retries=0)
    import boto3
    client = boto3.client('s3', region_name='us-east-1', endpoint_url='http://127.0.0.1:9',
                          aws_access_key_id='AKIDEXAMPLE', aws_secret_access_key='x',
                          config=aws.client_config(unreachable))
    with pytest.raises(aws.AWSError) as info:
        aws.AWSErrorHandler(unreachable, service='S3').call('list the versions of s3://b/k',
                                                            client.list_object_versions, Bucket='b', Prefix='k')
    err = info.value
    assert isinstance(err.exc, EndpointConnectionError) and err.operation == 'ListObjectVersions'
    assert err.message.startswith('list the versions of s3://b/k failed: cannot connect to http://127.0.0.1:9')
    assert err.result()['error'] == dict(type='EndpointConnectionError')


@pytest.mark.parametrize('exc, fragment', [
    (ReadTimeoutError(endpoint_url='http://x'), 'do it failed: the AWS endpoint did not answer within 60 s'),
    (NoCredentialsError(), 'do it failed: no AWS credentials found'),
    (ProfileNotFound(profile='ghost'), 'do it failed: profile ghost is not in ~/.aws/config'),
])
def test_wrapper_catches_every_botocore_error(exc, fragment):
    def boom(**kwargs):
        raise exc
    with pytest.raises(aws.AWSError, match=fragment) as info:
        aws.AWSErrorHandler().call('do it', boom, Bucket='b')
    assert info.value.exc is exc and info.value.operation == 'boom'


def test_wrapper_returns_none_for_expected_codes_and_passes_results_through(s3):
    from botocore.stub import Stubber
    with Stubber(s3) as stubber:
        stubber.add_client_error('head_bucket', service_error_code='404', http_status_code=404)
        stubber.add_response('head_bucket', {}, {'Bucket': 'b'})
        api = aws.AWSErrorHandler(LAB)
        assert api.call('check bucket b', s3.head_bucket, none_on=('404', 'NoSuchBucket'), Bucket='b') is None
        assert api.call('check bucket b', s3.head_bucket, none_on=('404',), Bucket='b') is not None


def test_wrapper_leaves_other_exceptions_alone():
    def bug(**kwargs):
        raise KeyError('x')
    with pytest.raises(KeyError):
        aws.AWSErrorHandler().call('do it', bug)


def test_connection_config_error_is_a_goship_error():
    with pytest.raises(GoshipError) as info:
        aws.check_connection_params(dict(access_key='AKID'))
    assert isinstance(info.value, aws.ConnectionConfigError)
    assert info.value.result() == dict(msg='access_key is set but secret_key is not: give both (or neither, to use '
                                           'a profile, the environment or an instance role)')


def test_stand_ins_without_botocore_have_botocore_shapes(tmp_path):
    """Without boto3/botocore aws.py still imports, and its ClientError takes (response, operation)."""
    import os
    import subprocess
    import sys
    code = ('import sys; sys.modules["boto3"] = sys.modules["botocore"] = None\n'
            'from ansible_collections.goship.deploy.plugins.module_utils import aws\n'
            'assert not aws.HAS_BOTO3\n'
            'exc = aws.ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")\n'
            'assert aws.error_code(exc) == "NoSuchKey" and exc.operation_name == "GetObject" and str(exc) == "gone"\n'
            'try:\n'
            '    aws.AWSErrorHandler().call("read k", lambda: (_ for _ in ()).throw(exc))\n'
            'except aws.AWSError as err:\n'
            '    assert err.message.startswith("read k failed"), err.message\n'
            'print("ok")\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=str(tmp_path), check=False,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr
