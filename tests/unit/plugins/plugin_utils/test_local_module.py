# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""release_ledger run in-process by its action plugin (run_local): arguments are validated as
AnsibleModule validates them, results and failures come back as module results, secrets are
masked. S3 is moto's in-process mock: these check the plumbing, the lab tests the real thing."""

from __future__ import annotations

import pytest
from moto import mock_aws

from ansible_collections.goship.deploy.plugins.modules import release_ledger
from ansible_collections.goship.deploy.plugins.module_utils import aws
from ansible_collections.goship.deploy.plugins.plugin_utils.local_module import LocalModule, run_local

BASE = dict(bucket='ledger-bucket', app='hello-svc', env='lab', region='us-east-1',
            access_key='AKIDEXAMPLE', secret_key='not-a-real-secret-value')


def ledger(check_mode=False, **args):
    return run_local(release_ledger.main, dict(BASE, **args), check_mode, release_ledger.ARGUMENT_SPEC,
                     required_if=release_ledger.REQUIRED_IF)


@pytest.fixture
def s3():
    with mock_aws():
        client = aws.client('s3', dict(region='us-east-1'))
        client.create_bucket(Bucket='ledger-bucket')
        yield client


def test_missing_required_if_argument_fails_before_any_call():
    result = ledger(state='locked', version='1.2.3')
    assert result['failed'] is True and result['changed'] is False
    assert 'run_id' in result['msg']


def test_wrong_type_fails_with_the_validators_message():
    result = ledger(state='read', limit='many')
    assert result['failed'] is True
    assert 'limit' in result['msg']


def test_lock_read_and_unlock_round_trip(s3):
    locked = ledger(state='locked', run_id='run-1', version='1.2.3', holder='ci')
    assert locked['changed'] is True and locked['lock']['run_id'] == 'run-1'
    held = ledger(state='locked', run_id='run-2', version='1.2.4', holder='ci')
    assert held['failed'] is True and 'run-1' in str(held)
    read = ledger(state='read')
    assert read['changed'] is False and read['current'] is None and read['history'] == []
    assert ledger(state='unlocked', run_id='run-1')['changed'] is True
    assert ledger(state='locked', run_id='run-2', version='1.2.4', holder='ci')['changed'] is True


def test_check_mode_changes_nothing(s3):
    assert ledger(check_mode=True, state='locked', run_id='run-1', version='1.2.3')['changed'] is True
    assert s3.list_objects_v2(Bucket='ledger-bucket').get('KeyCount', 0) == 0


def test_no_log_values_are_masked_in_results_and_failures():
    def echo(module):
        if module.params['state'] == 'read':
            module.exit_json(said=module.params['secret_key'])
        module.fail_json(msg='key %s refused' % module.params['secret_key'])

    said = run_local(echo, dict(BASE, state='read'), False, release_ledger.ARGUMENT_SPEC)
    refused = run_local(echo, dict(BASE, state='unlocked', run_id='x'), False, release_ledger.ARGUMENT_SPEC)
    for result in (said, refused):
        assert BASE['secret_key'] not in str(result)
    assert refused['failed'] is True and refused['msg'].startswith('key ')


def test_main_that_returns_without_a_result_is_a_failure():
    result = run_local(lambda module: None, dict(BASE), False, release_ledger.ARGUMENT_SPEC)
    assert result['failed'] is True


def test_local_module_exposes_check_mode_and_validated_params():
    module = LocalModule(dict(BASE), True, release_ledger.ARGUMENT_SPEC)
    assert module.check_mode is True
    assert module.params['prefix'] == 'ledger' and module.params['limit'] == 20
