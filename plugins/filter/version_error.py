# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one version rule for roles and playbooks: an empty string when the version is valid."""

from __future__ import annotations

DOCUMENTATION = r'''
name: version_error
author: goship.deploy maintainers (@goship)
version_added: 0.2.0
short_description: Why a release version is not valid, or an empty string when it is
description:
  - "Applies goship.deploy's one version rule, the one M(goship.deploy.deb_build), the CodeDeploy
    bundle, M(goship.deploy.service_release) and every playbook that takes C(version) use: a
    Debian version (C([epoch:]upstream[-revision]), the upstream part starting with a digit, no
    whitespace, characters C(A-Z a-z 0-9 . + ~), C(-) only before a revision and C(:) only after
    an epoch), given as a string."
  - A number is refused with a message to quote it, because YAML reads an unquoted C(1.10) as
    the float C(1.1).
options:
  _input:
    description: The version to check.
    type: raw
    required: true
'''

EXAMPLES = r'''
- name: Require a valid version
  ansible.builtin.assert:
    that: version | default('') | goship.deploy.version_error == ''
    fail_msg: "{{ version | default('') | goship.deploy.version_error }}"
'''

RETURN = r'''
_value:
  description: An empty string for a valid version, else one sentence saying what is wrong and what a valid one looks like.
  type: str
'''

from ansible_collections.goship.deploy.plugins.module_utils.version import version_problems


def version_error(value):
    return '; '.join(version_problems(value))


class FilterModule:
    """goship.deploy filters."""

    def filters(self):
        return {'version_error': version_error}
