# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migrate_script filter renders the same runner CodeDeploy bundles ship, with checked arguments.

The runner is tested through module_utils (codedeploy_hooks.migrate_script); the filter wrapper
through a real `ansible` run. Importing controller-side Ansible (ansible.errors) into this process
would switch module warnings to the controller's display and change other module tests' results."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_bundle as cb
from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_hooks as hooks

REPO = Path(__file__).resolve().parents[4]
ANSIBLE = Path(sys.executable).parent / 'ansible'


def render_with_ansible(expression):
    """Evaluate a Jinja expression with the filter in a real ansible run; returns (rc, text)."""
    env = {'ANSIBLE_CONFIG': str(REPO / 'ansible.cfg'), 'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_STDOUT_CALLBACK': 'json',
           'ANSIBLE_LOAD_CALLBACK_PLUGINS': '1', 'PATH': f'{ANSIBLE.parent}:/usr/bin:/bin'}
    proc = subprocess.run([str(ANSIBLE), 'localhost', '-m', 'ansible.builtin.debug', '-a',
                           'msg={{ %s }}' % expression], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    result = json.loads(proc.stdout[proc.stdout.index('{'):])['plays'][0]['tasks'][0]['hosts']['localhost']
    return proc.returncode, result.get('msg', '')


def test_the_filter_renders_and_reports_errors_in_one_message():
    rc, text = render_with_ansible("'hello-svc' | goship.deploy.migrate_script(migrations_dir='/srv/m')")
    assert rc == 0, text
    assert text == hooks.migrate_script('hello-svc', '/srv/m')
    rc, text = render_with_ansible("'bad name' | goship.deploy.migrate_script(migrations_dir='/m y')")
    assert rc != 0
    assert "migrate_script: service 'bad name'" in text and "migrations_dir '/m y'" in text


def test_renders_the_bundle_runner_with_absolute_paths():
    text = hooks.migrate_script('hello-svc', '/var/cache/goship/hello-svc/unpacked/usr/share/hello-svc/migrations')
    assert text.startswith('#!/bin/sh\n')
    assert "MIGRATIONS_DIR=/var/cache/goship/hello-svc/unpacked/usr/share/hello-svc/migrations" in text
    assert 'ENV_FILE=/etc/hello-svc/migrate.env' in text
    assert 'TABLE=goship_schema_migrations' in text
    assert 'LOCK_WAIT=840' in text
    # The same lock key as the CodeDeploy hook of the same service: both runners serialise.
    assert 'LOCK_KEY=%s' % shlex.quote(str(hooks.lock_key('hello-svc'))) in text
    assert subprocess.run(['sh', '-n'], input=text, text=True, check=False).returncode == 0


def test_the_bundle_uses_the_same_runner():
    assert hooks.migrate_script('svc', 'migrations', lock_wait=30) == hooks.render_hook_script(
        'migrate', service='svc', migrations_dir='migrations', pg_env_file='/etc/svc/migrate.env',
        migrations_table='goship_schema_migrations', lock_key=hooks.lock_key('svc'), lock_wait=30)


@pytest.mark.parametrize('args, fragment', [
    (('bad name', '/m'), "service 'bad name'"),
    (('svc', '/m y'), "migrations_dir '/m y'"),
    (('svc', "/m'x"), 'without spaces or quotes'),
    (('svc', '/m', 'relative.env'), "pg_env_file 'relative.env' must be an absolute path"),
    (('svc', '/m', None, 'Bad-Table'), 'lowercase SQL identifier'),
    (('svc', '/m', None, 'goship_schema_migrations', 0), 'lock_wait must be a whole number'),
])
def test_bad_arguments_are_one_clear_error(args, fragment):
    with pytest.raises(cb.BundleError) as err:
        hooks.migrate_script(*args)
    assert fragment in str(err.value)
