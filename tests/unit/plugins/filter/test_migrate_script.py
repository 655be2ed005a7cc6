# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migrate_script filter renders the same runner CodeDeploy bundles ship, with checked arguments."""

from __future__ import annotations

import shlex
import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.goship.deploy.plugins.filter.migrate_script import FilterModule, migrate_script
from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_bundle as cb


def test_registered_under_its_name():
    assert FilterModule().filters()['migrate_script'] is migrate_script


def test_renders_the_bundle_runner_with_absolute_paths():
    text = migrate_script('hello-svc', '/var/cache/goship/hello-svc/unpacked/usr/share/hello-svc/migrations')
    assert text.startswith('#!/bin/sh\n')
    assert "MIGRATIONS_DIR=/var/cache/goship/hello-svc/unpacked/usr/share/hello-svc/migrations" in text
    assert 'ENV_FILE=/etc/hello-svc/migrate.env' in text
    assert 'TABLE=goship_schema_migrations' in text
    assert 'LOCK_WAIT=840' in text
    # The same lock key as the CodeDeploy hook of the same service: both runners serialise.
    assert 'LOCK_KEY=%s' % shlex.quote(str(cb._lock_key('hello-svc'))) in text
    assert subprocess.run(['sh', '-n'], input=text, text=True, check=False).returncode == 0


def test_the_bundle_uses_the_same_runner():
    assert cb.migrate_script('svc', 'migrations', lock_wait=30) == cb.render_hook_script(
        'migrate', service='svc', migrations_dir='migrations', pg_env_file='/etc/svc/migrate.env',
        migrations_table='goship_schema_migrations', lock_key=cb._lock_key('svc'), lock_wait=30)


@pytest.mark.parametrize('args, fragment', [
    (('bad name', '/m'), "service 'bad name'"),
    (('svc', '/m y'), "migrations_dir '/m y'"),
    (('svc', "/m'x"), 'without spaces or quotes'),
    (('svc', '/m', 'relative.env'), "pg_env_file 'relative.env' must be an absolute path"),
    (('svc', '/m', None, 'Bad-Table'), 'lowercase SQL identifier'),
    (('svc', '/m', None, 'goship_schema_migrations', 0), 'lock_wait must be a whole number'),
])
def test_bad_arguments_are_one_clear_error(args, fragment):
    with pytest.raises(AnsibleFilterError) as err:
        migrate_script(*args)
    assert fragment in str(err.value)
    assert str(err.value).startswith('migrate_script: ')
