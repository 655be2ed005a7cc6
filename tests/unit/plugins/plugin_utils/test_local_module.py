# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""release_ledger and s3_artifact run in-process by their action plugins (run_local): arguments
are validated as AnsibleModule validates them, results and failures come back as module results,
secrets are masked, warnings shown, the temporary directory removed. S3 is moto's in-process mock: these check the plumbing, the lab tests the real thing."""

from __future__ import annotations

import hashlib
import os

import pytest
from moto import mock_aws

from ansible_collections.goship.deploy.plugins.modules import release_ledger, s3_artifact
from ansible_collections.goship.deploy.plugins.module_utils import aws
from ansible_collections.goship.deploy.plugins.plugin_utils.local_module import (
    LocalModule, asks_for_file_attributes, run_local)

BASE = dict(bucket='ledger-bucket', app='hello-svc', env='lab', region='us-east-1',
            access_key='AKIDEXAMPLE', secret_key='not-a-real-secret-value')


def ledger(check_mode=False, **args):
    return run_local(release_ledger.main, dict(BASE, **args), check_mode, release_ledger.ARGUMENT_SPEC,
                     name='release_ledger', required_if=release_ledger.REQUIRED_IF)


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


def test_an_unknown_option_is_named_as_ansiblemodule_names_it():
    result = ledger(state='read', colour='blue')
    assert result['failed'] is True
    assert result['msg'].startswith('Unsupported parameters for (release_ledger) module: colour.')


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


def test_warnings_diff_and_tmpdir_of_an_in_process_run():
    seen = {}

    def uses_everything(module):
        seen['tmpdir'] = module.tmpdir
        seen['exists'] = os.path.isdir(module.tmpdir)
        module.warn('the bucket has no versioning')
        module.exit_json(diff_asked=module._diff)

    result = run_local(uses_everything, dict(BASE), False, release_ledger.ARGUMENT_SPEC, diff=True)
    assert result['warnings'] == ['the bucket has no versioning'] and result['diff_asked'] is True
    assert seen['exists'] and not os.path.exists(seen['tmpdir'])   # removed after the run


def test_file_attributes_are_left_to_the_module_process():
    assert asks_for_file_attributes({'dest': '/tmp/x', 'mode': '0644'})
    assert asks_for_file_attributes({'owner': 'root'})
    assert not asks_for_file_attributes({'dest': '/tmp/x', 'state': 'fetched', 'mode': None})
    module = LocalModule(dict(bucket='b', key='k', state='fetched', dest='/tmp/x'), False, s3_artifact.ARGUMENT_SPEC,
                         add_file_common_args=True, required_if=s3_artifact.REQUIRED_IF)
    assert module.params['mode'] is None
    assert module.load_file_common_arguments(module.params) == {'path': '/tmp/x'}


def test_s3_artifact_fetch_in_process_verifies_and_is_idempotent(s3, tmp_path):
    body = b'not really a deb' * 1000
    digest = hashlib.sha256(body).hexdigest()
    s3.put_object(Bucket='ledger-bucket', Key='hello-svc/1.0.0/a.deb', Body=body, Metadata={'sha256': digest})
    args = dict(bucket='ledger-bucket', key='hello-svc/1.0.0/a.deb', state='fetched', dest=str(tmp_path / 'a.deb'),
                region='us-east-1', access_key='AKIDEXAMPLE', secret_key='not-a-real-secret-value')

    def fetch(**extra):
        return run_local(s3_artifact.main, dict(args, **extra), False, s3_artifact.ARGUMENT_SPEC,
                         add_file_common_args=True, required_if=s3_artifact.REQUIRED_IF)

    first, again = fetch(), fetch()
    assert first['changed'] is True and first['sha256'] == digest and (tmp_path / 'a.deb').read_bytes() == body
    assert again['changed'] is False
    wrong = fetch(sha256='0' * 64, dest=str(tmp_path / 'b.deb'))
    assert wrong['failed'] is True and not (tmp_path / 'b.deb').exists()
    assert 'Traceback' not in wrong['msg']
