# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger's history, read from S3 (moto's in-process mock; the lab tests the real server):
newest first also past the first list page, one version's entries by key, records and current."""

from __future__ import annotations

import pytest
from moto import mock_aws

from ansible_collections.goship.deploy.plugins.module_utils import aws
from ansible_collections.goship.deploy.plugins.module_utils.ledger import Ledger


@pytest.fixture
def ledger():
    with mock_aws():
        client = aws.client('s3', dict(region='us-east-1'))
        client.create_bucket(Bucket='ledger')
        yield Ledger(client, 'ledger', 'ledger', 'hello-svc', 'prod')


def entry(number, version, result='succeeded'):
    return {'started': '2026-01-01T00:%02d:%02dZ' % divmod(number, 60) if number < 3600 else '2026-01-02T00:00:00Z',
            'version': version, 'result': result, 'number': number}


def test_history_is_newest_first_past_the_first_list_page(ledger):
    for number in range(1005):   # more keys than one list page holds
        ledger.s3.put_object(Bucket='ledger', Key=ledger.key('history/2026%06d-1.%d.json' % (number, number)),
                             Body=b'{"number": %d}' % number)
    newest = ledger.history(limit=3)
    assert [item['number'] for item in newest] == [1004, 1003, 1002]


def test_history_of_one_version_and_current(ledger):
    ledger.record(entry(1, '1.0'))
    ledger.record(entry(2, '1.1', result='failed'))
    ledger.record(entry(3, '1.10'))
    ledger.record(entry(4, '1.1'))
    assert [item['number'] for item in ledger.history(version='1.1')] == [4, 2]   # not 1.10's
    assert [item['number'] for item in ledger.history()] == [4, 3, 2, 1]
    assert ledger.read('current.json')['number'] == 4          # the last succeeded one
    assert ledger.history(version='2.0') == []
