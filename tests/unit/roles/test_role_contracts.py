# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every role keeps the collection's role contract: defaults/main.yml and meta/argument_specs.yml
agree (every default documented with the same default, nothing documented that has no default
unless it is required), variables carry the role's prefix, and the role has a README and meta."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
ROLES = sorted(p.name for p in (REPO / 'roles').iterdir() if (p / 'tasks' / 'main.yml').exists())


def load(path):
    return yaml.safe_load(path.read_text()) or {}


def normalise(value):
    """Compare defaults as YAML values; folded templates may differ only in whitespace."""
    if isinstance(value, str):
        return ' '.join(value.split())
    return value


@pytest.fixture(params=ROLES)
def role(request):
    return REPO / 'roles' / request.param


def test_there_are_roles():
    assert {'go_service', 'systemd_unit'} <= set(ROLES)


def test_role_has_readme_meta_and_argument_specs(role):
    for part in ('README.md', 'meta/main.yml', 'meta/argument_specs.yml', 'defaults/main.yml'):
        assert (role / part).is_file(), f'{role.name} has no {part}'
    assert load(role / 'meta' / 'main.yml')['galaxy_info']['role_name'] == role.name


def test_every_default_is_documented_with_the_same_default(role):
    defaults = load(role / 'defaults' / 'main.yml')
    specs = load(role / 'meta' / 'argument_specs.yml')['argument_specs']
    main = specs['main']['options']
    missing = sorted(set(defaults) - set(main))
    assert not missing, f'{role.name}: defaults without argument_specs entry: {missing}'
    # A required option's placeholder in defaults/main.yml (e.g. "") is not a default.
    different = {name: (defaults[name], main[name].get('default')) for name in defaults
                 if not main[name].get('required')
                 and normalise(defaults[name]) != normalise(main[name].get('default'))}
    assert not different, f'{role.name}: defaults differ from argument_specs: {different}'


def test_documented_options_have_a_default_or_are_required(role):
    defaults = load(role / 'defaults' / 'main.yml')
    for entry, spec in load(role / 'meta' / 'argument_specs.yml')['argument_specs'].items():
        for name, option in spec['options'].items():
            assert name in defaults or option.get('required'), \
                f'{role.name}/{entry}: {name} is neither required nor in defaults/main.yml'
            assert option.get('description'), f'{role.name}/{entry}: {name} has no description'


def test_variables_carry_the_role_prefix(role):
    defaults = load(role / 'defaults' / 'main.yml')
    stray = [name for name in defaults if not name.startswith(role.name + '_')]
    assert not stray, f'{role.name}: variables without the {role.name}_ prefix: {stray}'
