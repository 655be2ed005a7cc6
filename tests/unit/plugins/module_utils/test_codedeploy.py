# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for module_utils/codedeploy*.py (API calls, errors, report, revision bundle) and the codedeploy_revision module.

1. Waiting and reporting run on the response corpus in ``codedeploy_responses/``: response
   bodies in the CodeDeploy JSON wire format (succeeded; failed with diagnostics; stopped;
   rolled back; in progress -> succeeded; the older instance API).  Each body is parsed
   by botocore's own JSON parser (so timestamps become datetimes exactly as from the
   service) and queued on ``botocore.stub.Stubber``, which validates it against the
   service model and checks the request parameters.
2. What moto lacks (RegisterApplicationRevision, targets, status progress) is checked
   against moto's server running in a thread of this process on an ephemeral loopback
   port, over HTTP, as the lab serves it: the HTML 500 answers, no retries, the bounded wait.
3. Bundles from the module's options, request shapes and the error mapping.
4. The module, run in-process against that moto server (S3 and CodeDeploy).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.parsers import create_parser
from botocore.stub import Stubber
from botocore import xform_name

from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.goship.deploy.plugins.module_utils import codedeploy as cd
from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_bundle as cb
from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_errors as cde
from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_report as report
from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_revision_bundle as revision_bundle
from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError
from ansible_collections.goship.deploy.plugins.modules import codedeploy_revision as module

RESPONSES = Path(__file__).resolve().parent / 'codedeploy_responses'
AWS_ENV = ('AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_URL', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_PROFILE',
           'AWS_DEFAULT_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_ACCESS_KEY', 'AWS_SECRET_ACCESS_KEY', 'AWS_SECRET_KEY',
           'AWS_SESSION_TOKEN', 'AWS_CA_BUNDLE', 'AWS_ENDPOINT_URL_CODEDEPLOY')
SECRET = 'moto-secret-access-key-never-logged'
CONN = dict(region='us-east-1', access_key='AKIDGOSHIPTEST', secret_key=SECRET)


@pytest.fixture(autouse=True)
def clean_aws_env(monkeypatch, tmp_path):
    for name in AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('AWS_CONFIG_FILE', str(tmp_path / 'aws-config'))
    monkeypatch.setenv('AWS_SHARED_CREDENTIALS_FILE', str(tmp_path / 'aws-credentials'))
    monkeypatch.setenv('AWS_EC2_METADATA_DISABLED', 'true')


# ------------------------------------------------------------------------------------------ corpus


def corpus(name):
    return json.loads((RESPONSES / name).read_text())


def parse(client, operation, body, request_id):
    """A wire body as boto3 returns it: botocore's JSON parser on the operation's output shape."""
    model = client.meta.service_model.operation_model(operation)
    return create_parser('json').parse(
        {'status_code': 200, 'headers': {'x-amzn-requestid': request_id}, 'body': json.dumps(body).encode()},
        model.output_shape)


def stub(client, *names):
    """A Stubber with the calls of the corpus files ``names`` queued in order."""
    stubber = Stubber(client)
    for name in names:
        for index, call in enumerate(corpus(name)['calls']):
            method = xform_name(call['operation'])
            if 'error' in call:
                error = call['error']
                stubber.add_client_error(method, service_error_code=error['code'], service_message=error['message'],
                                         http_status_code=error['status'], expected_params=call['request'])
            else:
                stubber.add_response(method, parse(client, call['operation'], call['response'],
                                                   '%s-%d' % (name, index)), call['request'])
    stubber.activate()
    return stubber


@pytest.fixture
def client():
    return cd.client_for(dict(CONN, retries=0))


def first_deployment_id(name):
    return corpus(name)['calls'][0]['request']['deploymentId']


def test_every_corpus_file_matches_the_service_model(client):
    names = sorted(p.name for p in RESPONSES.glob('*.json'))
    assert len(names) >= 7
    seen = set()
    for name in names:
        data = corpus(name)
        assert data['description'] and data['calls']
        stubber = stub(client, name)          # add_response validates every body against the model
        seen.update(call['operation'] for call in data['calls'])
        stubber.deactivate()
    assert {'GetDeployment', 'ListDeploymentTargets', 'BatchGetDeploymentTargets', 'ListDeploymentInstances',
            'BatchGetDeploymentInstances'} <= seen


def test_parsed_timestamps_are_datetimes_like_from_the_service(client):
    body = corpus('succeeded.json')['calls'][0]['response']
    info = parse(client, 'GetDeployment', body, 'r')['deploymentInfo']
    assert isinstance(info['createTime'], datetime.datetime) and info['createTime'].tzinfo is not None


def summary_of(client, name):
    stubber = stub(client, name)
    info = cd.get_deployment(client, first_deployment_id(name))
    summary = report.summarize(client, info)
    stubber.assert_no_pending_responses()
    return summary


def test_succeeded_deployment_summary(client):
    summary = summary_of(client, 'succeeded.json')
    assert summary['status'] == 'Succeeded' and summary['error'] is None and summary['rollback'] is None
    assert summary['counts'] == dict(total=2, succeeded=2, failed=0, skipped=0, in_progress=0, pending=0, ready=0)
    assert [i['instance_id'] for i in summary['instances']] == ['i-0a1b2c3d4e5f60718', 'i-0f9e8d7c6b5a49382']
    assert summary['instances_source'] == 'targets' and summary['instances_note'] is None
    first = summary['instances'][0]
    assert first['status'] == 'Succeeded' and first['failure'] is None
    assert first['target_arn'].endswith(':instance/i-0a1b2c3d4e5f60718')
    names = [e['name'] for e in first['events']]
    assert names[:5] == ['BeforeBlockTraffic', 'BlockTraffic', 'AfterBlockTraffic', 'ApplicationStop', 'DownloadBundle']
    after_install = [e for e in first['events'] if e['name'] == 'AfterInstall'][0]
    assert after_install['status'] == 'Succeeded' and after_install['duration_s'] == pytest.approx(9.846, abs=0.002)
    assert after_install['error_code'] == 'Success' and after_install['script_name'] is None
    assert first['duration_s'] > 17 and summary['duration_s'] > first['duration_s']
    assert summary['revision'] == dict(bucket='goship-artifacts', key='hello-svc/1.214/codedeploy/hello-svc_1.214.zip',
                                       bundle_type='zip', version='Qh7pLkV2bXo0m6sJrT1u8yZcWq3eN5dA',
                                       etag='c3a1e6f09b7d4c2e8f5a0b1d2e3f4a5b')
    lines = report.format_summary(summary)
    assert lines[0].startswith('CodeDeploy deployment d-4J8Y1FVKB of hello-svc to hello-svc-production '
                               '(CodeDeployDefault.OneAtATime): Succeeded after ')
    assert 'instances: 2 (2 succeeded, 0 failed)' in lines
    assert any(line.startswith('  i-0a1b2c3d4e5f60718 Succeeded in ') and 'AfterInstall 9.8s' in line for line in lines)
    json.dumps(summary)   # plain data, ready for the module result


def test_failed_deployment_reports_script_error_code_and_log_tail(client):
    summary = summary_of(client, 'failed_script.json')   # also reads the second page of targets
    assert summary['status'] == 'Failed'
    assert summary['error']['code'] == 'HEALTH_CONSTRAINTS'
    assert summary['counts'] == dict(total=3, succeeded=1, failed=1, skipped=1, in_progress=0, pending=0, ready=0)
    by_id = dict((i['instance_id'], i) for i in summary['instances'])
    failed = by_id['i-0f9e8d7c6b5a49382']
    assert failed['status'] == 'Failed'
    assert failed['failure'] == dict(
        event='ValidateService', error_code='ScriptFailed', script_name='scripts/validate.sh',
        message='Script at specified location: scripts/validate.sh run as user root failed with exit code 1',
        log_tail=failed['failure']['log_tail'])
    assert "reports version '1.213', expected '1.214'" in failed['failure']['log_tail']
    validate = [e for e in failed['events'] if e['name'] == 'ValidateService'][0]
    assert validate['duration_s'] == pytest.approx(120.412, abs=0.002)
    after = [e['status'] for e in failed['events'][failed['events'].index(validate) + 1:]]
    assert after and set(after) == {'Skipped'}
    assert by_id['i-0c2d4e6f8a0b1c3d5']['status'] == 'Skipped'

    msg = report.failure_message(summary)
    first_line = msg.splitlines()[0]
    assert first_line.startswith('CodeDeploy deployment d-7QK2ZC3XA failed: HEALTH_CONSTRAINTS: The overall')
    assert ('i-0f9e8d7c6b5a49382 failed at ValidateService: ScriptFailed in scripts/validate.sh: Script at '
            'specified location: scripts/validate.sh run as user root failed with exit code 1') in first_line
    assert 'instances: 3 (1 succeeded, 1 failed, 1 skipped)' in msg
    assert '    failed at ValidateService: ScriptFailed in scripts/validate.sh' in msg
    assert "      [stderr]validate: hello-svc failed validation after 61 attempt(s)" in msg
    assert 'ValidateService FAILED 2m00s' in msg and 'AfterAllowTraffic skipped' in msg


def test_stopped_deployment(client):
    summary = summary_of(client, 'stopped.json')
    assert summary['status'] == 'Stopped' and summary['error']['code'] == 'MANUAL_STOP'
    msg = report.failure_message(summary)
    assert msg.startswith('CodeDeploy deployment d-2M6NV0PRS stopped: MANUAL_STOP: The deployment was stopped')
    stopped = [i for i in summary['instances'] if i['status'] == 'Failed'][0]
    assert stopped['failure']['event'] == 'DownloadBundle' and stopped['failure']['error_code'] == 'UnknownError'


def test_rolled_back_deployment_reports_the_rollback_and_its_status(client):
    summary = summary_of(client, 'rolled_back.json')
    assert summary['status'] == 'Failed'
    assert summary['rollback'] == dict(
        deployment_id='d-5EX0QF8LJ', status='Succeeded', triggering_deployment_id=None,
        message='Deployment d-9HT4WB1YE was rolled back: automatic rollback on DEPLOYMENT_FAILURE created '
                'deployment d-5EX0QF8LJ.')
    failure = summary['instances'][0]['failure']
    assert failure['event'] == 'AfterInstall' and failure['error_code'] == 'ScriptTimedOut'
    assert failure['script_name'] == 'scripts/install.sh' and 'Could not get lock' in failure['log_tail']
    msg = report.failure_message(summary)
    assert 'rolled back by d-5EX0QF8LJ (Succeeded)' in msg.splitlines()[0]
    assert 'rolled back by deployment d-5EX0QF8LJ (Succeeded): Deployment d-9HT4WB1YE was rolled back' in msg
    assert 'AfterInstall FAILED 10m00s' in msg


def test_the_rollback_deployment_itself_names_what_it_rolls_back(client):
    body = corpus('rolled_back.json')['calls'][-1]['response']
    summary = report.build_summary(parse(client, 'GetDeployment', body, 'r')['deploymentInfo'])
    assert summary['creator'] == 'codeDeployRollback'
    assert summary['rollback']['triggering_deployment_id'] == 'd-9HT4WB1YE'
    assert 'this deployment rolls back deployment d-9HT4WB1YE' in report.format_summary(summary)


class FakeClock(object):
    """time.monotonic/time.sleep stand-ins: sleeping advances the clock."""

    def __init__(self, step=0.0):
        self.now = 1000.0
        self.step = step
        self.sleeps = []

    def clock(self):
        self.now += self.step
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_polls_until_final_then_reports(client):
    stubber = stub(client, 'in_progress_then_succeeded.json')
    fake = FakeClock()
    info, timed_out, polls = cd.wait_for_deployment(client, 'd-1RZ7KD4GU', timeout=600, interval=15,
                                                    clock=fake.clock, sleep=fake.sleep)
    assert (info['status'], timed_out, polls) == ('Succeeded', False, 4)
    assert fake.sleeps == [15, 15, 15]
    summary = report.summarize(client, info)
    stubber.assert_no_pending_responses()
    assert summary['counts']['succeeded'] == 2 and len(summary['instances']) == 2


def test_wait_ends_at_the_timeout_with_the_last_status_and_a_partial_report(client):
    calls = corpus('in_progress_then_succeeded.json')['calls'][:3]   # Created, InProgress, InProgress
    stubber = Stubber(client)
    for index, call in enumerate(calls):
        stubber.add_response('get_deployment', parse(client, 'GetDeployment', call['response'], str(index)),
                             call['request'])
    for index, call in enumerate(corpus('in_progress_targets.json')['calls']):
        stubber.add_response(xform_name(call['operation']),
                             parse(client, call['operation'], call['response'], 't%d' % index), call['request'])
    stubber.activate()
    fake = FakeClock()
    info, timed_out, polls = cd.wait_for_deployment(client, 'd-1RZ7KD4GU', timeout=20, interval=10,
                                                    clock=fake.clock, sleep=fake.sleep)
    assert (info['status'], timed_out, polls) == ('InProgress', True, 3)
    assert fake.sleeps == [10, 10]
    summary = report.summarize(client, info)
    stubber.assert_no_pending_responses()
    msg = report.timeout_message(summary, 20, polls)
    assert msg.startswith('CodeDeploy deployment d-1RZ7KD4GU did not reach a final status (Succeeded, Failed or '
                          'Stopped) within wait_timeout=20 s: last status InProgress after 3 poll(s)')
    assert 'never started' not in msg
    assert 'instances: 2 (1 succeeded, 0 failed, 1 in progress)' in msg
    assert 'DownloadBundle inprogress, BeforeInstall pending' in msg


def test_wait_is_bounded_even_when_the_clock_stands_still(client):
    body = corpus('in_progress_then_succeeded.json')['calls'][0]['response']   # Created
    stubber = Stubber(client)
    for index in range(7):
        stubber.add_response('get_deployment', parse(client, 'GetDeployment', body, str(index)),
                             {'deploymentId': 'd-1RZ7KD4GU'})
    stubber.activate()
    frozen = FakeClock()
    info, timed_out, polls = cd.wait_for_deployment(client, 'd-1RZ7KD4GU', timeout=5, interval=1,
                                                    clock=lambda: 1000.0, sleep=frozen.sleeps.append)
    assert timed_out and info['status'] == 'Created' and polls == 7    # timeout / interval + 2
    summary = report.build_summary(info, targets_note='the deployment has not started on any instance yet')
    msg = report.timeout_message(summary, 5, polls)
    assert 'last status Created after 7 poll(s)' in msg and 'It never started' in msg


def test_older_instance_api_gives_the_same_report(client):
    summary = summary_of(client, 'legacy_instances.json')
    assert summary['instances_source'] == 'instances'
    assert [i['instance_id'] for i in summary['instances']] == ['i-0a1b2c3d4e5f60718', 'i-0f9e8d7c6b5a49382']
    failed = summary['instances'][1]
    assert failed['target_arn'] == 'arn:aws:ec2:eu-central-1:123456789012:instance/i-0f9e8d7c6b5a49382'
    assert failed['failure']['event'] == 'ApplicationStart' and failed['failure']['script_name'] == 'scripts/start.sh'
    assert 'journalctl -xeu hello-svc.service' in report.failure_message(summary)


def test_targets_of_a_deployment_that_has_not_started(client):
    stubber = Stubber(client)
    stubber.add_client_error('list_deployment_targets', 'DeploymentNotStartedException', 'not started', 400,
                             expected_params={'deploymentId': 'd-X'})
    stubber.activate()
    assert cd.list_targets(client, 'd-X') == ([], None, 'the deployment has not started on any instance yet')


def test_targets_that_cannot_be_read_do_not_hide_the_outcome(client):
    stubber = Stubber(client)
    stubber.add_client_error('list_deployment_targets', 'AccessDeniedException', 'no', 400,
                             expected_params={'deploymentId': 'd-X'})
    stubber.activate()
    targets, source, note = cd.list_targets(client, 'd-X', CONN)
    assert targets == [] and source is None
    assert 'access denied' in note and 'codedeploy:ListDeploymentTargets' in note


def test_moto_shaped_deployment_info_has_no_error_and_no_rollback():
    info = dict(deploymentId='d', applicationName='a', deploymentGroupName='g', status='Created',
                errorInformation={}, rollbackInfo={}, deploymentOverview={'Pending': 0}, revision={})
    summary = report.build_summary(info)
    assert summary['error'] is None and summary['rollback'] is None and summary['revision'] is None
    assert summary['counts']['total'] == 0
    assert report.format_summary(summary)[0] == ("CodeDeploy deployment d of a to g (the group's deployment config): "
                                                 "Created")


# ------------------------------------------------------------------------------------------ moto over HTTP


@pytest.fixture(scope='module')
def moto_url():
    """moto's server in a thread of this process, on an ephemeral loopback port."""
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield 'http://%s:%s' % (host, port)
    server.stop()


@pytest.fixture
def moto_params(moto_url):
    return dict(CONN, endpoint_url=moto_url, retries=5)


def count_requests(client):
    sent = []
    client.meta.events.register('before-send', lambda request=None, **kwargs: sent.append(
        request.headers.get('X-Amz-Target', b'').decode() if isinstance(request.headers.get('X-Amz-Target'), bytes)
        else request.headers.get('X-Amz-Target')))
    return sent


def test_register_against_moto_names_the_operation_and_the_endpoint_without_retrying(moto_params, moto_url):
    client = cd.client_for(moto_params)
    sent = count_requests(client)
    revision = cd.s3_revision('b', 'k.zip', 'zip', 'v1', '"etag"')
    with pytest.raises(cd.NotImplementedByEndpoint) as caught:
        cd.register_revision(client, 'app', revision, params=moto_params)
    msg = caught.value.message
    assert 'RegisterApplicationRevision is not implemented by the CodeDeploy endpoint %s' % moto_url in msg
    assert 'set register: false' in msg and 'HTML error page' in msg
    # one request each for the lookup and the registration: the HTML 500s were not retried
    assert [target.rsplit('.', 1)[-1] for target in sent] == ['GetApplicationRevision', 'RegisterApplicationRevision']


def test_moto_deployment_never_progresses_and_the_wait_ends_at_the_timeout(moto_params):
    client = cd.client_for(moto_params)
    assert cd.ensure_application(client, 'app-wait', moto_params) is True
    assert cd.ensure_application(client, 'app-wait', moto_params) is False
    created, warnings, info = cd.ensure_deployment_group(
        client, 'app-wait', 'grp', dict(service_role_arn='arn:aws:iam::123456789012:role/cd',
                                        ec2_tag_filters=[dict(key='env', value='lab')]), moto_params)
    assert (created, warnings, info) == (True, [], None)
    created, warnings, info = cd.ensure_deployment_group(
        client, 'app-wait', 'grp', dict(service_role_arn='arn:aws:iam::123456789012:role/other',
                                        ec2_tag_filters=[dict(key='env', value='lab')]), moto_params)
    assert created is False and info['deploymentGroupName'] == 'grp'
    assert warnings == ['deployment group grp uses service role arn:aws:iam::123456789012:role/cd, not '
                        'arn:aws:iam::123456789012:role/other; it was not changed']
    revision = cd.s3_revision('b', 'k.zip', 'zip', 'v1', 'e1')
    deployment_id = cd.create_deployment(client, cd.create_deployment_args('app-wait', 'grp', revision), moto_params)
    info, timed_out, polls = cd.wait_for_deployment(client, deployment_id, timeout=1, interval=0.5,
                                                    params=moto_params)
    assert timed_out and info['status'] == 'Created' and 2 <= polls <= 4
    summary = report.summarize(client, info, moto_params)
    assert summary['instances'] == [] and summary['instances_source'] is None
    assert summary['instances_note'] == ('no per-instance details: the endpoint %s implements neither '
                                         'ListDeploymentTargets nor ListDeploymentInstances' % moto_params['endpoint_url'])
    assert 'last status Created' in report.timeout_message(summary, 1, polls)


def test_unknown_application_and_group_are_explained(moto_params):
    client = cd.client_for(moto_params)
    revision = cd.s3_revision('b', 'k.zip', 'zip')
    with pytest.raises(cd.CodeDeployError) as caught:
        cd.create_deployment(client, cd.create_deployment_args('no-such-app', 'grp', revision), moto_params)
    assert 'application no-such-app does not exist in region us-east-1 at %s' % moto_params['endpoint_url'] \
        in caught.value.message
    assert 'ensure_application: true' in caught.value.message
    cd.ensure_application(client, 'app-nogroup', moto_params)
    with pytest.raises(cd.CodeDeployError) as caught:
        cd.create_deployment(client, cd.create_deployment_args('app-nogroup', 'nope', revision), moto_params)
    assert 'deployment group nope of application app-nogroup does not exist' in caught.value.message
    assert cd.get_deployment_group(client, 'app-nogroup', 'nope', moto_params) is None


def test_unreachable_endpoint_is_one_clear_sentence():
    params = dict(CONN, endpoint_url='http://127.0.0.1:9', retries=5)
    client = cd.client_for(params)
    with pytest.raises(cd.CodeDeployError) as caught:
        cd.get_deployment(client, 'd-X', params)
    assert isinstance(caught.value.exc, EndpointConnectionError)
    assert 'cannot connect to http://127.0.0.1:9' in caught.value.message
    assert 'the CodeDeploy service' in caught.value.message and 'S3' not in caught.value.message


# ------------------------------------------------------------------------------------------ error mapping


def client_error(code, message='', status=400, operation='CreateDeployment', headers=None):
    return ClientError({'Error': {'Code': code, 'Message': message},
                        'ResponseMetadata': {'HTTPStatusCode': status, 'RequestId': 'req-1',
                                             'HTTPHeaders': headers or {}}}, operation)


@pytest.mark.parametrize('code, fragments', [
    ('DeploymentConfigDoesNotExistException', ['use one of CodeDeployDefault.OneAtATime', 'custom deployment']),
    ('InvalidRoleException', ['service_role_arn must be an IAM role that trusts codedeploy.amazonaws.com']),
    ('DeploymentLimitExceededException', ['runs one deployment at a time']),
    ('RevisionDoesNotExistException', ['check bucket, key']),
    ('InvalidAutoRollbackConfigException', ['auto_rollback was refused']),
    ('AccessDeniedException', ['access denied for access key AKIDGOSHIPTEST', 'codedeploy:CreateDeployment']),
    ('UnrecognizedClientException', ['access key AKIDGOSHIPTEST is not known', 'CodeDeploy service']),
    ('ThrottlingException', ['kept throttling']),
    ('SomethingNew', ['do it failed: boom (SomethingNew, HTTP 400, request id req-1)']),
])
def test_codedeploy_error_codes_become_actionable_messages(code, fragments):
    msg = cde.describe_error(client_error(code, 'boom'), 'do it', CONN, application='app', deployment_group='grp')
    for fragment in fragments:
        assert fragment in msg, msg
    assert SECRET not in msg


def test_a_failed_call_is_a_goship_error_naming_the_operation(client):
    stubber = Stubber(client)
    stubber.add_client_error('get_application', service_error_code='ApplicationDoesNotExistException',
                             http_status_code=400, expected_params={'applicationName': 'app'})
    stubber.add_client_error('create_application', service_error_code='AccessDeniedException', service_message='no',
                             http_status_code=400, expected_params={'applicationName': 'app', 'computePlatform': 'Server'})
    with stubber, pytest.raises(GoshipError) as caught:
        cd.ensure_application(client, 'app', CONN)
    err = caught.value
    assert isinstance(err, cd.CodeDeployError) and isinstance(err.exc, ClientError)
    assert err.operation == 'CreateApplication' and err.code == 'AccessDeniedException'
    assert err.message.startswith('create CodeDeploy application app failed: access denied for access key '
                                  'AKIDGOSHIPTEST: allow codedeploy:CreateApplication on application app')
    result = err.result()
    assert result['msg'] == err.message and result['error']['code'] == 'AccessDeniedException'
    assert result['error']['operation'] == 'CreateApplication' and SECRET not in json.dumps(result)


def test_expected_codes_are_answers_not_failures(client):
    stubber = Stubber(client)
    stubber.add_client_error('get_application', service_error_code='ApplicationDoesNotExistException',
                             http_status_code=400)
    stubber.add_client_error('create_application', service_error_code='ApplicationAlreadyExistsException',
                             http_status_code=400)
    stubber.add_client_error('get_deployment_group', service_error_code='DeploymentGroupDoesNotExistException',
                             http_status_code=400)
    with stubber:
        assert cd.ensure_application(client, 'app', CONN) is False     # created meanwhile by someone else
        assert cd.get_deployment_group(client, 'app', 'grp', CONN) is None


@pytest.mark.parametrize('exc, cls, fragment', [
    (ReadTimeoutError(endpoint_url='http://x'), cd.CodeDeployError,
     'read deployment d-1 failed: the AWS endpoint did not answer within 60 s: check the CodeDeploy service'),
    (NotImplementedError('get_deployment has not been implemented'), cd.NotImplementedByEndpoint,
     'read deployment d-1 failed: boom is not implemented by the CodeDeploy endpoint'),
    (client_error('UnknownOperationException', operation='GetDeployment'), cd.NotImplementedByEndpoint,
     'read deployment d-1 failed: GetDeployment is not implemented by the CodeDeploy endpoint'),
])
def test_unexpected_botocore_errors_go_through_the_wrapper_too(exc, cls, fragment):
    def boom(**kwargs):
        raise exc
    with pytest.raises(cls) as caught:
        cde.CodeDeployErrorHandler(CONN).call('read deployment d-1', boom, deploymentId='d-1')
    assert caught.value.message.startswith(fragment), caught.value.message
    assert caught.value.exc is exc and 'Traceback' not in caught.value.message


def test_every_api_call_goes_through_the_wrapper():
    """codedeploy.py has no hand-written botocore except clause left: the wrapper is the only one."""
    source = Path(cd.__file__).read_text()
    assert 'except (ClientError' not in source and 'except ClientError' not in source
    assert 'except BotoCoreError' not in source and 'except (BotoCoreError' not in source


@pytest.mark.parametrize('exc, expected', [
    (client_error('500', '<!doctype html><title>500</title>', 500, headers={'content-type': 'text/html'}), True),
    (client_error('500', '<!doctype html>', 500), True),
    (client_error('InternalFailure', 'oops', 500, headers={'content-type': 'application/x-amz-json-1.1'}), False),
    (client_error('UnknownOperationException', '', 400), True),
    (client_error('NotImplemented', '', 501), True),
    (client_error('AccessDeniedException', '', 400), False),
    (NotImplementedError('The register_application_revision action has not been implemented'), True),
    (ValueError('x'), False),
])
def test_is_not_implemented(exc, expected):
    assert cde.is_not_implemented(exc) is expected


# ------------------------------------------------------------------------------------------ request shapes


def test_s3_revision_and_same_revision():
    revision = cd.s3_revision('b', 'k.tgz', 'tgz', 'v1', '"abc-2"')
    assert revision == {'revisionType': 'S3', 's3Location': {'bucket': 'b', 'key': 'k.tgz', 'bundleType': 'tgz',
                                                             'version': 'v1', 'eTag': 'abc-2'}}
    assert 'version' not in cd.s3_revision('b', 'k', 'zip', 'null')['s3Location']
    assert cd.same_revision(revision, cd.s3_revision('b', 'k.tgz', 'tgz', 'v1', 'abc-2'))
    assert cd.same_revision(revision, cd.s3_revision('b', 'k.tgz', 'tgz', 'v1'))
    assert not cd.same_revision(revision, cd.s3_revision('b', 'k.tgz', 'tgz', 'v2', 'abc-2'))
    assert not cd.same_revision(revision, cd.s3_revision('b', 'k.tgz', 'tgz', 'v1', 'other'))
    assert not cd.same_revision(revision, {})


def test_create_deployment_args_leave_unset_options_to_the_group():
    revision = cd.s3_revision('b', 'k', 'zip', 'v')
    assert cd.create_deployment_args('a', 'g', revision) == dict(applicationName='a', deploymentGroupName='g',
                                                                 revision=revision)
    full = cd.create_deployment_args('a', 'g', revision, 'CodeDeployDefault.HalfAtATime', 'hello 1.214',
                                     dict(enabled=True), 'OVERWRITE', True)
    assert full['deploymentConfigName'] == 'CodeDeployDefault.HalfAtATime' and full['description'] == 'hello 1.214'
    assert full['autoRollbackConfiguration'] == {'enabled': True, 'events': ['DEPLOYMENT_FAILURE']}
    assert full['fileExistsBehavior'] == 'OVERWRITE' and full['ignoreApplicationStopFailures'] is True
    assert cd.normalize_auto_rollback(dict(enabled=False)) == {'enabled': False}
    with pytest.raises(ValueError, match='unknown event NOPE'):
        cd.normalize_auto_rollback(dict(enabled=True, events=['NOPE']))
    # every shape is valid for botocore's request validation
    stubber = Stubber(boto3.client('codedeploy', region_name='us-east-1', aws_access_key_id='a',
                                   aws_secret_access_key=SECRET))
    stubber.add_response('create_deployment', {'deploymentId': 'd-1'}, full)
    with stubber:
        assert stubber.client.create_deployment(**full)['deploymentId'] == 'd-1'


def test_tag_filters_and_tag_sets():
    assert cd.tag_filters([dict(key='app', value='hello'), dict(key='env'), dict(value='x', type='VALUE_ONLY')]) == [
        {'Type': 'KEY_AND_VALUE', 'Key': 'app', 'Value': 'hello'}, {'Type': 'KEY_ONLY', 'Key': 'env'},
        {'Type': 'VALUE_ONLY', 'Value': 'x'}]
    assert cd.tag_set([[dict(key='app', value='a')], [dict(key='env', value='lab')]]) == {'ec2TagSetList': [
        [{'Type': 'KEY_AND_VALUE', 'Key': 'app', 'Value': 'a'}], [{'Type': 'KEY_AND_VALUE', 'Key': 'env', 'Value': 'lab'}]]}
    with pytest.raises(ValueError, match=r'ec2_tag_filters\[0\].value is required'):
        cd.tag_filters([dict(key='app', type='KEY_AND_VALUE')])
    with pytest.raises(ValueError, match='at most 3 groups'):
        cd.tag_set([[dict(key='a')]] * 4)
    with pytest.raises(ValueError, match=r'ec2_tag_set\[0\] must be a non-empty list'):
        cd.tag_set([[]])


# ------------------------------------------------------------------------------------------ bundles


@pytest.fixture
def deb(tmp_path):
    path = tmp_path / 'hello-svc_1.214_amd64.deb'
    path.write_bytes(b'!<arch>\nnot really a package\n')
    return path


def go_options(deb, **extra):
    options = dict(format='zip', go_service=dict(service='hello-svc', version='1.214', artifact=str(deb),
                                                 health_url='http://127.0.0.1:8080/healthz'))
    options.update(extra)
    return options


def test_go_service_bundle_from_options_is_reproducible_and_valid(deb):
    first = revision_bundle.build_from_options(go_options(deb))
    second = revision_bundle.build_from_options(go_options(deb))
    assert first.data == second.data and first.sha256 == second.sha256
    assert first.validation.ok
    assert [w.path for w in first.validation.warnings] == ['hooks.ApplicationStop']
    assert 'pkg/hello-svc_1.214_amd64.deb' in first.entries and 'scripts/validate.sh' in first.entries
    with zipfile.ZipFile(io.BytesIO(first.data)) as archive:
        assert archive.namelist()[0] == 'appspec.yml'
    tgz = revision_bundle.build_from_options(go_options(deb, format='tgz', mtime=1700000000))
    assert tgz.fmt == 'tgz' and tgz.data[:2] == b'\x1f\x8b' and tgz.validation.ok


def test_structured_bundle_with_content_directory(tmp_path):
    scripts = tmp_path / 'scripts'
    scripts.mkdir()
    (scripts / 'start.sh').write_text('#!/bin/sh\nexec systemctl restart app\n')
    (tmp_path / 'app').write_bytes(b'\x7fELF binary')
    options = dict(format='zip', files=[dict(source='bin/app', destination='/usr/local/bin')],
                   hooks=dict(ApplicationStart=[dict(location='scripts/start.sh', timeout=60, runas='root')]),
                   content=[dict(src=str(scripts), path='scripts', mode='0755'),
                            dict(src=str(tmp_path / 'app'), path='bin/app', mode='0755')])
    built = revision_bundle.build_from_options(options)
    assert built.validation.ok, built.validation.format()
    assert built.entries == ['appspec.yml', 'bin', 'bin/app', 'scripts', 'scripts/start.sh']
    assert 'ApplicationStart:\n    - location: scripts/start.sh\n      timeout: 60\n      runas: root' in built.appspec


def test_every_appspec_problem_is_reported_with_its_path(tmp_path):
    text = ('version: "0.0"\nos: linux\nhooks:\n  Install:\n    - location: scripts/x.sh\n'
            '  AfterInstall:\n    - location: scripts/missing.sh\n      timeout: 4000\n      runas: "root; id"\n')
    built = revision_bundle.build_from_options(dict(format='zip', appspec_content=text))
    paths = sorted(set(p.path for p in built.validation.problems))
    assert paths == ['hooks.AfterInstall[0].location', 'hooks.AfterInstall[0].runas', 'hooks.AfterInstall[0].timeout',
                     'hooks.Install', 'hooks.Install[0].location', 'version']


def test_bundle_inputs_that_cannot_be_built(tmp_path, deb):
    with pytest.raises(cb.BundleError, match='bundle takes one appspec source, got appspec_content and go_service'):
        revision_bundle.build_from_options(go_options(deb, appspec_content='version: 0.0\nos: linux\n'))
    with pytest.raises(cb.BundleError, match='bundle needs one appspec source'):
        revision_bundle.build_from_options(dict(format='zip'))
    with pytest.raises(cb.BundleError, match=r'bundle.content\[0\].src .*/nope does not exist'):
        revision_bundle.build_from_options(dict(format='zip', appspec_content='version: 0.0\nos: linux\n',
                                                content=[dict(src=str(tmp_path / 'nope'))]))
    with pytest.raises(cb.BundleError, match='bundle.appspec: cannot read'):
        revision_bundle.build_from_options(dict(format='zip', appspec=str(tmp_path / 'missing.yml')))
    with pytest.raises(cb.BundleError, match="health_url 'localhost:8080' must be an http"):
        revision_bundle.build_from_options(dict(format='zip', go_service=dict(service='s', version='1', artifact=str(deb),
                                                                              health_url='localhost:8080')))


def test_write_bundle_only_when_the_bytes_change(tmp_path):
    path = tmp_path / 'out' / 'b.zip'
    assert revision_bundle.write_bundle(str(path), b'one', check_mode=True) is True and not path.exists()
    assert revision_bundle.write_bundle(str(path), b'one') is True and path.read_bytes() == b'one'
    inode = path.stat().st_ino
    assert revision_bundle.write_bundle(str(path), b'one') is False and path.stat().st_ino == inode
    assert revision_bundle.write_bundle(str(path), b'two', check_mode=True) is True and path.read_bytes() == b'one'
    assert oct(path.stat().st_mode & 0o777) == '0o644'


# ------------------------------------------------------------------------------------------ the module


@contextlib.contextmanager
def isolated_module_warnings():
    """Module warnings are process-global in ansible-core: keep ours out of other tests' results."""
    stores = [getattr(ansible_warnings, name, None) for name in ('_global_warnings', '_global_deprecations')]
    saved = [dict(store) if isinstance(store, dict) else None for store in stores]
    try:
        yield
    finally:
        for store, copy in zip(stores, saved):
            if copy is not None:
                store.clear()
                store.update(copy)


def run_module(tmp_path, args, check=False):
    """Run codedeploy_revision in-process; returns its JSON result."""
    full = dict(args)
    full.update(_ansible_check_mode=check, _ansible_remote_tmp=str(tmp_path / 'remote'),
                _ansible_keep_remote_files=False)
    out = io.StringIO()
    with isolated_module_warnings(), patch_module_args(full), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(out.getvalue())


def warning_text(warning):
    """A module warning as text (ansible-core >= 2.19 returns WarningSummary dicts)."""
    return warning if isinstance(warning, str) else warning['event']['msg']


@pytest.fixture
def lab_like(moto_url, tmp_path, deb):
    """Module arguments against the in-process moto server (S3 and CodeDeploy), fresh names per test."""
    name = 'app-%s' % tmp_path.name[-12:].replace('_', '-').strip('-')
    s3 = boto3.client('s3', endpoint_url=moto_url, region_name='us-east-1', aws_access_key_id='a',
                      aws_secret_access_key=SECRET)
    bucket = 'artifacts-%s' % name.lower()
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={'Status': 'Enabled'})
    args = dict(CONN, endpoint_url=moto_url, state='deployed', application=name, deployment_group=name + '-lab',
                ensure_application=True,
                ensure_deployment_group=dict(service_role_arn='arn:aws:iam::123456789012:role/goship-codedeploy',
                                             ec2_tag_set=[[dict(key='app', value=name)], [dict(key='env', value='lab')]]),
                bundle=go_options(deb), bundle_path=str(tmp_path / 'bundle' / 'b.zip'), bucket=bucket,
                key='%s/1.214/codedeploy/%s_1.214.zip' % (name, name),
                deployment_config_name='CodeDeployDefault.OneAtATime', auto_rollback=dict(enabled=True),
                description='%s 1.214' % name, wait=False)
    codedeploy = boto3.client('codedeploy', endpoint_url=moto_url, region_name='us-east-1', aws_access_key_id='a',
                              aws_secret_access_key=SECRET)
    return args, s3, codedeploy


def test_module_deploys_the_exact_object_version(tmp_path, lab_like):
    args, s3, codedeploy = lab_like
    result = run_module(tmp_path, args)
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is True and result['application_created'] and result['deployment_group_created']
    head = s3.head_object(Bucket=args['bucket'], Key=args['key'])
    assert head['Metadata']['sha256'] == result['bundle']['sha256'] == result['artifact']['sha256']
    assert head['Metadata']['version'] == '1.214'
    info = codedeploy.get_deployment(deploymentId=result['deployment_id'])['deploymentInfo']
    assert info['revision'] == {'revisionType': 'S3', 's3Location': {
        'bucket': args['bucket'], 'key': args['key'], 'bundleType': 'zip', 'version': head['VersionId'],
        'eTag': head['ETag'].strip('"')}}
    assert info['deploymentConfigName'] == 'CodeDeployDefault.OneAtATime' and info['description'] == args['description']
    assert info['autoRollbackConfiguration'] == {'enabled': True, 'events': ['DEPLOYMENT_FAILURE']}
    group = codedeploy.get_deployment_group(applicationName=args['application'],
                                            deploymentGroupName=args['deployment_group'])['deploymentGroupInfo']
    assert group['ec2TagSet']['ec2TagSetList'][1] == [{'Key': 'env', 'Value': 'lab', 'Type': 'KEY_AND_VALUE'}]
    assert result['status'] == 'Created' and result['report'][0].endswith(': Created')
    assert Path(args['bundle_path']).read_bytes()[:2] == b'PK'
    assert any('ApplicationStop runs the scripts of the PREVIOUSLY' in warning_text(w) for w in result['warnings'])
    assert SECRET not in json.dumps(result)

    # The same inputs: same bundle, no upload, nothing created (moto keeps no lastAttemptedDeployment,
    # so a deployment is created again there; against AWS the group's last one would be found).
    again = run_module(tmp_path, dict(args, state='present'))
    assert again['changed'] is False and again['artifact']['changed'] is False
    assert again['artifact']['version_id'] == head['VersionId']


def test_module_register_against_moto_fails_clearly(tmp_path, lab_like, moto_url):
    args, _s3, _codedeploy = lab_like
    result = run_module(tmp_path, dict(args, state='present', register=True))
    assert result['failed'] is True
    assert 'RegisterApplicationRevision is not implemented by the CodeDeploy endpoint %s' % moto_url in result['msg']
    assert 'set register: false' in result['msg']
    assert result['error']['operation'] == 'RegisterApplicationRevision'
    assert result['error']['message'] == '(an HTML error page)'
    assert result['artifact']['version_id'] and 'Traceback' not in result['msg'] and 'exception' not in result


def test_module_wait_ends_at_wait_timeout_with_the_last_status(tmp_path, lab_like):
    args, _s3, codedeploy = lab_like
    result = run_module(tmp_path, dict(args, wait=True, wait_timeout=2, poll_interval=1))
    assert result['failed'] is True and result['changed'] is True
    assert result['msg'].startswith('CodeDeploy deployment %s did not reach a final status' % result['deployment_id'])
    assert 'within wait_timeout=2 s: last status Created' in result['msg']
    assert result['status'] == 'Created' and result['deployment']['instances_note'].startswith('no per-instance')
    assert codedeploy.get_deployment(deploymentId=result['deployment_id'])['deploymentInfo']['status'] == 'Created'


def test_module_check_mode_builds_and_validates_only(tmp_path, lab_like):
    args, s3, codedeploy = lab_like
    result = run_module(tmp_path, args, check=True)
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is True and result['validation']['ok'] is True
    assert 'deployment_id' not in result and 'artifact' not in result
    assert not Path(args['bundle_path']).exists()
    assert 'Contents' not in s3.list_objects_v2(Bucket=args['bucket'])
    with pytest.raises(ClientError, match='ApplicationDoesNotExistException'):
        codedeploy.get_application(applicationName=args['application'])


def test_module_validated_state_reports_every_problem_and_writes_nothing(tmp_path):
    bundle_path = tmp_path / 'bad.zip'
    args = dict(state='validated', bundle_path=str(bundle_path), bundle=dict(
        appspec_content='version: 0.0\nos: Linux\nhooks:\n  DownloadBundle:\n    - location: scripts/a.sh\n'))
    result = run_module(tmp_path, args)
    assert result['failed'] is True and not bundle_path.exists()
    assert result['msg'].startswith('the bundle is not valid, nothing was uploaded (')
    for path in ('os', 'hooks.DownloadBundle', 'hooks.DownloadBundle[0].location'):
        assert '\n%s' % path in result['msg'] or '\n%s (line' % path in result['msg'], result['msg']
    assert len(result['problems']) == len(result['validation']['problems']) >= 3


def test_module_validated_state_writes_the_bundle_once(tmp_path, deb):
    args = dict(state='validated', bundle_path=str(tmp_path / 'out' / 'b.zip'), bundle=go_options(deb))
    first = run_module(tmp_path, args)
    assert first['changed'] is True and first['validation']['ok'] and os.path.isfile(args['bundle_path'])
    second = run_module(tmp_path, args)
    assert second['changed'] is False and second['bundle']['sha256'] == first['bundle']['sha256']


@pytest.mark.parametrize('args, fragment', [
    (dict(state='present'), 'state is present but all of the following are missing: bucket, key'),
    (dict(state='deployed', bucket='b', key='k.zip'),
     'state is deployed but all of the following are missing: application, deployment_group'),
    (dict(register=True, bucket='b', key='k.zip'), 'register is True but all of the following are missing: application'),
    (dict(bucket='b', key='app/1.0/'), "key 'app/1.0/' must name the bundle object"),
    (dict(state='validated', wait_timeout=0), 'wait_timeout must be between 1 and 86400 seconds, got 0'),
    (dict(state='validated', encryption='none', kms_key_id='alias/x'), 'kms_key_id is only used with encryption=aws:kms'),
    (dict(state='deployed', bucket='b', key='k.zip', application='a', deployment_group='g',
          ensure_deployment_group=dict(service_role_arn='arn')), 'ensure_deployment_group needs ec2_tag_filters or '
                                                                 'ec2_tag_set'),
    (dict(state='validated', s3_endpoint_url='minio:9000'), "endpoint_url must start with http:// or https://, got "
                                                            "'minio:9000'"),
    (dict(state='validated', bundle=dict(appspec_content='x', hooks={'AfterInstall': []})),
     'bundle takes one appspec source, got appspec_content and files/permissions/hooks/file_exists_behavior'),
])
def test_module_argument_problems_fail_before_anything_is_built(tmp_path, deb, args, fragment):
    full = dict(CONN, bundle=go_options(deb))
    full.update(args)
    result = run_module(tmp_path, full)
    assert result['failed'] is True and fragment in result['msg'], result['msg']


def test_module_main_has_one_except_clause_for_goship_errors():
    import ast
    tree = ast.parse(Path(module.__file__).read_text())
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == 'main')
    handlers = [node for node in ast.walk(main) if isinstance(node, ast.ExceptHandler)]
    assert [ast.unparse(handler.type) for handler in handlers] == ['GoshipError']


def test_module_client_failures_are_one_sentence_without_traceback(tmp_path, deb):
    """A botocore error while creating the S3 client comes out through the wrapper, not as a traceback."""
    args = dict(region='us-east-1', profile='ghost', state='present', bucket='b', key='app/1/b.zip',
                bundle=go_options(deb))
    result = run_module(tmp_path, args)
    assert result['failed'] is True and 'exception' not in result
    assert result['msg'].startswith('create the S3 client failed: profile ghost is not in ~/.aws/config')
    assert result['error'] == {'type': 'ProfileNotFound'}
    assert result['bundle']['sha256'] and result['validation']['ok']     # what was done before stays


def test_module_bundle_path_that_is_a_directory(tmp_path, deb):
    (tmp_path / 'out').mkdir()
    result = run_module(tmp_path, dict(state='validated', bundle_path=str(tmp_path / 'out'), bundle=go_options(deb)))
    assert result['failed'] is True and 'exception' not in result
    assert result['msg'] == 'bundle_path %s is a directory; name the bundle file' % (tmp_path / 'out')


def test_module_bundle_that_cannot_be_built_lists_the_problems(tmp_path, deb):
    result = run_module(tmp_path, dict(state='validated', bundle=dict(
        format='zip', appspec_content='version: 0.0\nos: linux\n', content=[dict(src=str(tmp_path / 'nope'))])))
    assert result['failed'] is True
    assert result['msg'].startswith('cannot build the bundle: bundle.content[0].src ')
    assert result['problems'] and result['problems'][0].endswith('does not exist (on the host running the module)')


def test_module_upload_to_a_missing_bucket_uses_the_s3_wording(tmp_path, lab_like):
    args, _s3, _codedeploy = lab_like
    result = run_module(tmp_path, dict(args, state='present', bucket='no-such-bucket-goship'))
    assert result['failed'] is True and 'exception' not in result
    assert 'bucket no-such-bucket-goship does not exist' in result['msg'], result['msg']
    assert result['error']['code'] == 'NoSuchBucket' and 'artifact' not in result
