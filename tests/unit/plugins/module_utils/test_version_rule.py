# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One version rule: every entry point that takes a version accepts and refuses the same forms.

Entry points: module_utils.version (the rule), deb_build's validation, the CodeDeploy bundle,
service_release's options, and the goship.deploy.version_error filter that go_build, go_service,
build.yml and deploy.yml use (evaluated in one real `ansible` run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_bundle as cb
from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_go_service as go_service
from ansible_collections.goship.deploy.plugins.module_utils import debian_package as dp
from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError
from ansible_collections.goship.deploy.plugins.module_utils.version import version_problems

REPO = Path(__file__).resolve().parents[4]
ANSIBLE = Path(sys.executable).parent / 'ansible'

ACCEPTED = ['1.214', '1.0.0', '2:1.0~rc1', '1.214-1', '0.0+git20240101-1~bpo12+1', '1:2.0']
REFUSED = ['v1.2.3', '1.2_3', '1.2 3', '', 'latest', '1.0-', 'a:1.0', "1.0'x"]


@pytest.mark.parametrize('version', ACCEPTED)
def test_accepted_everywhere(version, tmp_path):
    assert version_problems(version) == []
    assert dp.validate_version(version) == []
    assert not [p for p in bundle_problems(version, tmp_path) if 'version' in p]
    assert service_release_problems(version) == ''


@pytest.mark.parametrize('version', REFUSED)
def test_refused_everywhere_with_the_same_message(version, tmp_path):
    problems = version_problems(version)
    assert len(problems) == 1
    assert dp.validate_version(version) == problems
    assert problems[0] in bundle_problems(version, tmp_path)
    assert problems[0] in service_release_problems(version)


def test_a_number_is_refused_with_a_hint_to_quote_it():
    problems = version_problems(1.1)
    assert problems and 'quote it' in problems[0] and '1.10' in problems[0]
    assert version_problems(1214) and 'quote it' in version_problems(1214)[0]


def test_the_filter_applies_the_same_rule_in_ansible():
    """One ansible run evaluates the filter for every form (and a float from YAML)."""
    forms = ACCEPTED + REFUSED
    expression = "%s | map('goship.deploy.version_error') | list + [1.10 | goship.deploy.version_error]" % json.dumps(forms)
    env = {'ANSIBLE_CONFIG': str(REPO / 'ansible.cfg'), 'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_STDOUT_CALLBACK': 'json',
           'ANSIBLE_LOAD_CALLBACK_PLUGINS': '1', 'PATH': f'{ANSIBLE.parent}:/usr/bin:/bin'}
    proc = subprocess.run([str(ANSIBLE), 'localhost', '-m', 'ansible.builtin.debug', '-a', 'msg={{ %s }}' % expression],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout[proc.stdout.index('{'):])['plays'][0]['tasks'][0]['hosts']['localhost']['msg']
    assert result[:len(forms)] == ['; '.join(version_problems(form)) for form in forms]
    assert 'quote it' in result[-1]


def bundle_problems(version, tmp_path):
    deb = tmp_path / 'svc.deb'
    deb.write_bytes(b'!<arch>\n')
    try:
        go_service.go_service_layout('svc', version, str(deb), 'http://127.0.0.1:8080/healthz')
    except cb.BundleError as exc:
        return exc.problems
    return []


def service_release_problems(version):
    """The module's option check (imported lazily: it pulls in ansible.module_utils)."""
    from ansible_collections.goship.deploy.plugins.modules.service_release import build_request
    params = dict(version=version, sha256='', cache_keep=3, health=None, name='svc', package_name=None,
                  arch='amd64', cache_dir='/var/cache/goship/svc', files=[], secret_files=[], remove=[], socket=None,
                  user='', group='', directories=[], drain='none', consul_url='', journal_lines=5)
    try:
        build_request(params)
    except GoshipError as exc:
        return exc.message
    return ''
