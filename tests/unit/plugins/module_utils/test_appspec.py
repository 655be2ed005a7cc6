# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for module_utils/appspec.py.

The corpus under ``appspec_corpus/`` holds valid and broken appspecs; its
``expectations.yml`` says, per file, the exact set of problems (path + message
substring) and warnings that must be reported.  The rest checks behaviour the
corpus cannot express (mapping input, callable bundles, boundaries, shapes that
must never raise).
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from ansible_collections.goship.deploy.plugins.module_utils import appspec
from ansible_collections.goship.deploy.plugins.module_utils.appspec import Problem, Result, validate

CORPUS = Path(__file__).resolve().parent / 'appspec_corpus'
EXPECTATIONS = yaml.safe_load((CORPUS / 'expectations.yml').read_text())

GOOD_HEAD = b'#!/bin/sh\nset -eu\n'


def _bundle(spec):
    """expectations' {path: {mode: "0755", head: "..."}} -> appspec bundle_files mapping."""
    if spec is None:
        return None
    files = {}
    for path, info in spec.items():
        info = info or {}
        mode = int(str(info.get('mode', '0644')), 8)
        if path.endswith('/'):
            mode |= stat.S_IFDIR
        else:
            mode |= stat.S_IFREG
        files[path] = (mode, info.get('head', '').encode('latin-1'))
    return files


def _match_exactly(actual, expected, kind, name):
    """Every expected {path, message} matches a distinct actual finding, and nothing else is reported."""
    remaining = list(actual)
    for exp in expected:
        parts = exp['message'] if isinstance(exp['message'], list) else [exp['message']]
        for found in remaining:
            if found.path == exp['path'] and all(part in found.message for part in parts):
                remaining.remove(found)
                break
        else:
            pytest.fail('%s: expected %s at %r containing %r; got:\n%s' % (
                name, kind, exp['path'], exp['message'], '\n'.join(str(a) for a in actual) or '(none)'))
    assert not remaining, '%s: unexpected %s:\n%s' % (name, kind, '\n'.join(str(r) for r in remaining))


# --------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------

def test_corpus_and_expectations_match():
    files = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.glob('*/*.yml'))
    assert files == sorted(EXPECTATIONS), 'every corpus file needs an expectation and vice versa'
    invalid = [f for f in files if f.startswith('invalid/')]
    valid = [f for f in files if f.startswith('valid/')]
    assert len(invalid) >= 15 and len(valid) >= 3
    for name in invalid:
        assert EXPECTATIONS[name]['problems'], name + ' must expect at least one problem'
    for name in valid:
        assert EXPECTATIONS[name]['problems'] == [], name


@pytest.mark.parametrize('name', sorted(EXPECTATIONS))
def test_corpus(name):
    expected = EXPECTATIONS[name]
    result = validate((CORPUS / name).read_bytes(), bundle_files=_bundle(expected.get('bundle')))
    assert isinstance(result, Result)
    _match_exactly(result.problems, expected['problems'], 'problem', name)
    if 'warnings' in expected:
        _match_exactly(result.warnings, expected['warnings'], 'warning', name)
    assert result.ok == (not expected['problems'])
    for problem in result.problems + result.warnings:
        assert isinstance(problem, Problem) and isinstance(problem.path, str) and problem.message


def test_multi_problem_files_report_everything_with_lines():
    result = validate((CORPUS / 'invalid/multi_everything.yml').read_text())
    assert len(result.problems) == 12
    # Sorted in file order, each with the line it was found on.
    lines = [p.line for p in result.problems]
    assert all(lines) and lines == sorted(lines)
    by_path = {p.path: p for p in result.problems}
    assert by_path['version'].line == 2
    assert by_path['hooks.ApplicationStart[0].timeout'].line == 19
    assert str(by_path['version']).startswith('version (line 2): ')


def test_yaml_syntax_error_is_reported_with_its_line():
    # (Kept out of the corpus: the repository's ansible-lint cannot load such files.)
    result = validate('version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: a.sh\n     timeout: 30\n')
    assert [p.path for p in result.problems] == [''] and result.spec is None
    assert result.problems[0].message.startswith('not valid YAML: while parsing a block collection')
    assert '(line 6, column 6)' in result.problems[0].message and result.problems[0].line == 6


def test_more_than_one_yaml_document_is_rejected():
    # One YAML document only: the agent reads a single one.  (Kept out of the corpus:
    # yamllint, which ansible-test sanity runs on every YAML file, rejects such files.)
    result = validate(b'version: 0.0\nos: linux\n---\nversion: 0.0\nos: linux\n')
    assert isinstance(result, Result) and not result.ok and result.spec is None
    assert [p.path for p in result.problems] == ['']
    assert isinstance(result.problems[0], Problem)
    assert 'more than one YAML document' in result.problems[0].message
    assert result.problems[0].line == 3


def test_yaml_language_specific_tags_are_rejected():
    result = validate('version: 0.0\nos: !!python/name:os.system linux\n')
    assert [p.path for p in result.problems] == ['os']
    assert 'YAML tag !!python/name:os.system is not allowed' in result.problems[0].message
    result = validate('version: 0.0\nos: linux\nfiles: !ruby/object:Foo {}\n')
    assert 'YAML tag !ruby/object:Foo is not allowed' in result.problems[0].message


# --------------------------------------------------------------------------
# Values and boundaries
# --------------------------------------------------------------------------

def _hook(**script):
    return {'version': 0.0, 'os': 'linux', 'hooks': {'AfterInstall': [dict({'location': 'scripts/a.sh'}, **script)]}}


@pytest.mark.parametrize('timeout', [1, 60, 3600])
def test_timeout_bounds_accepted(timeout):
    assert validate(_hook(timeout=timeout)).ok


@pytest.mark.parametrize('timeout, message', [
    (0, '0 is too small'),
    (-5, '-5 is too small'),
    (3601, '3601 s is above 3600 s'),
    (7200, '7200 s is above 3600 s'),
    (0.5, 'fraction of a second'),
    (30.0, 'write 30, not 30.0'),
    (True, 'not a boolean'),
    ('30s', "'30s' has a unit"),
    ('2m', "'2m' has a unit"),
    ('60', "is the quoted string '60'"),
    ('two minutes', "'two minutes' is not a number of seconds"),
    (None, 'is empty'),
    ([30], 'not a list'),
])
def test_timeout_rejected(timeout, message):
    result = validate(_hook(timeout=timeout))
    assert [p.path for p in result.problems] == ['hooks.AfterInstall[0].timeout']
    assert message in result.problems[0].message


def test_event_sum_exactly_one_hour_is_accepted():
    spec = {'version': 0.0, 'os': 'linux', 'hooks': {'AfterInstall': [
        {'location': 'a.sh', 'timeout': 1800}, {'location': 'b.sh', 'timeout': 1800}]}}
    assert validate(spec).ok
    spec['hooks']['AfterInstall'][1]['timeout'] = 1801
    result = validate(spec)
    assert [p.path for p in result.problems] == ['hooks.AfterInstall']
    assert 'up to 3601 s together' in result.problems[0].message


def test_sum_is_per_event_not_per_deployment():
    # Every event gets its own hour: 9 events x 3600 s is fine.
    spec = {'version': 0.0, 'os': 'linux',
            'hooks': {event: [{'location': 's.sh', 'timeout': 3600}] for event in appspec.HOOKABLE_EVENTS}}
    result = validate(spec)
    assert result.ok, result.format()


@pytest.mark.parametrize('runas', ['app', 'root', '_svc', 'www-data', 'a' * 32, 'machine$', 'app_2'])
def test_runas_valid(runas):
    assert validate(_hook(runas=runas)).ok


@pytest.mark.parametrize('runas, message', [
    ('root; touch /tmp/x #', 'through a shell'),
    ('app && id', 'through a shell'),
    ('$(id)', 'through a shell'),
    ('app\nid', 'through a shell'),
    ('app user', 'through a shell'),
    ('Deployer', 'not a valid user name'),
    ('1app', 'not a valid user name'),
    ('a' * 33, 'longer than 32 characters'),
    ('', 'is empty'),
    (None, 'is empty'),
    (1000, 'must be a user name, not the number 1000'),
])
def test_runas_rejected(runas, message):
    result = validate(_hook(runas=runas))
    assert [p.path for p in result.problems] == ['hooks.AfterInstall[0].runas']
    assert message in result.problems[0].message


def test_version_forms():
    assert validate('version: 0.0\nos: linux\n').ok
    quoted = validate("version: '0.0'\nos: linux\n")
    assert 'unquote' in quoted.problems[0].message or 'without quotes' in quoted.problems[0].message
    tagged = validate('version: !!str 0.0\nos: linux\n')
    assert "quoted string '0.0'" in tagged.problems[0].message
    assert not validate('version: true\nos: linux\n').ok
    # A parsed mapping with a str version is still caught.
    assert "quoted string" in validate({'version': '0.0', 'os': 'linux'}).problems[0].message


def test_os_family():
    assert validate('version: 0.0\nos: linux\n', os_family='linux').ok
    result = validate('version: 0.0\nos: windows\n', os_family='linux')
    assert result.problems[0].path == 'os' and 'targets linux instances' in result.problems[0].message


def test_file_exists_behavior_values():
    for value in appspec.FILE_EXISTS_BEHAVIORS:
        assert validate({'version': 0.0, 'os': 'linux', 'file_exists_behavior': value}).ok


def test_every_hookable_event_accepted_and_reserved_ones_rejected():
    for event in appspec.HOOKABLE_EVENTS:
        spec = {'version': 0.0, 'os': 'linux', 'hooks': {event: [{'location': 's.sh', 'timeout': 5}]}}
        result = validate(spec)
        assert result.ok, result.format()
        assert bool(result.warnings) == (event in appspec.PREVIOUS_REVISION_EVENTS)
    for event in appspec.RESERVED_EVENTS:
        spec = {'version': 0.0, 'os': 'linux', 'hooks': {event: [{'location': 's.sh', 'timeout': 5}]}}
        assert 'can never run scripts' in validate(spec).problems[0].message


def test_unknown_event_case_suggestion():
    result = validate({'version': 0.0, 'os': 'linux', 'hooks': {'afterinstall': [{'location': 'a.sh'}]}})
    assert "did you mean 'AfterInstall'?" in result.problems[0].message


def test_octal_mode_with_leading_zero_is_explained():
    result = validate('version: 0.0\nos: linux\npermissions:\n  - object: /opt\n    mode: 0644\n')
    assert result.problems[0].message.startswith('YAML reads 0644 as the octal number 420')
    for good in ('"0644"', '644', '"755"', '4755', '"7"'):
        assert validate('version: 0.0\nos: linux\npermissions:\n  - object: /opt\n    mode: %s\n' % good).ok


# --------------------------------------------------------------------------
# Inputs and shapes that must never raise
# --------------------------------------------------------------------------

@pytest.mark.parametrize('text', [
    '', '   \n', '# only a comment\n', '0.0', '"text"', '[]', '{}', 'null', '~',
    'version: 0.0\nos: linux\nhooks: {1: 2}\n',
    'version: 0.0\nos: linux\nhooks: {AfterInstall: [null]}\n',
    'version: 0.0\nos: linux\nhooks: {AfterInstall: [[location, a.sh]]}\n',
    'version: 0.0\nos: linux\nhooks: {AfterInstall: [{location: [a.sh]}]}\n',
    'version: 0.0\nos: linux\nhooks: {AfterInstall: [{location: {a: b}}]}\n',
    'version: 0.0\nos: linux\nhooks: "AfterInstall"\n',
    'version: 0.0\nos: linux\nhooks: 3\n',
    'version: 0.0\nos: linux\nfiles: [[]]\n',
    'version: 0.0\nos: linux\nfiles: {source: a, destination: /b}\n',
    'version: 0.0\nos: linux\nfiles: [{source: [a], destination: {b: c}}]\n',
    'version: 0.0\nos: linux\npermissions: [[]]\n',
    'version: 0.0\nos: linux\npermissions: [{object: /a, type: [[file]], mode: [7], context: x}]\n',
    'version: 0.0\nos: linux\npermissions: [{object: /a, context: {range: s0}, acls: u:a:r}]\n',
    'version: 0.0\nos: [linux]\nfile_exists_behavior: [OVERWRITE]\n',
    '? [a, b]\n: c\nversion: 0.0\nos: linux\n',
    '? {a: b}\n: c\n',
    'a: &x [*x]\n',
    '&anchor a: b\n*anchor : c\n',
    '<<: {version: 0.0}\nos: linux\n',
    'version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: !!binary aGVsbG8=\n',
    'version: 0.0\nos: linux\nfiles: !!set {a: null}\n',
    'version: 0.0\nos: !ruby/object:Foo {}\n',
    'version: 0.0\n\tos: linux\n',
    'version: 0.0\nos: linux\nhooks: {AfterInstall: [{location: a.sh, timeout: !!int x}]}\n',
    'version: 0.0\nos: linux\nhooks: {AfterInstall: [{location: a.sh, sudo: !!bool maybe}]}\n',
    'version: !!float zero\nos: linux\n',
    '- - - [\n',
    '"unterminated\n',
    b'\xff\xfe not utf-8',
    'version: 0.0\nos: linux\nhooks: {AfterInstall: [{location: a.sh, timeout: .inf}]}\n',
    'version: 0.0\nos: linux\nhooks: {AfterInstall: [{location: a.sh, timeout: .nan}]}\n',
    'version: 0.0\nos: linux\nhooks: {AfterInstall: [{location: a.sh, timeout: 99999999999999999999999}]}\n',
])
def test_never_raises_and_reports_a_problem(text):
    result = validate(text, bundle_files={'a.sh': (0o100755, GOOD_HEAD)})
    assert isinstance(result, Result)
    assert result.problems, 'expected a problem for %r' % (text,)
    for problem in result.problems:
        assert isinstance(problem.path, str) and problem.message


@pytest.mark.parametrize('value', [None, 3, 'text', ['version'], object()])
def test_non_text_non_mapping_inputs(value):
    result = validate(value)
    assert not result.ok and result.spec is None


def test_recursive_alias_does_not_hang_or_raise():
    result = validate('version: 0.0\nos: linux\nhooks: &h {AfterInstall: *h}\n')
    assert [p.path for p in result.problems] == ['hooks.AfterInstall']
    assert 'YAML alias *h' in result.problems[0].message


def test_anchor_without_alias_is_a_warning():
    result = validate('version: 0.0\nos: linux\nhooks:\n  AfterInstall: &ai\n    - location: a.sh\n')
    assert result.ok
    assert [(w.path, w.line) for w in result.warnings] == [('hooks.AfterInstall', 4)]
    assert 'YAML anchor &ai' in result.warnings[0].message


def test_mapping_input_skips_yaml_rules():
    spec = {'version': 0.0, 'os': 'linux', 'files': [{'source': 'app', 'destination': '/opt/app'}],
            'hooks': {'ApplicationStart': [{'location': 'scripts/start.sh', 'timeout': 30, 'runas': 'app'}]}}
    result = validate(spec)
    assert result.ok and result.spec == spec and result.warnings == []


def test_spec_is_returned_even_with_problems():
    result = validate('version: "0.0"\nos: linux\nhooks: {}\n')
    assert not result.ok
    assert result.spec == {'version': '0.0', 'os': 'linux', 'hooks': {}}


def test_result_helpers():
    result = validate('version: 0\nos: Linux\n')
    assert not result and not result.ok
    text = result.format()
    assert text.splitlines()[0].startswith("error: os (line 2): 'Linux'")
    assert 'warning: version (line 1)' in text
    data = result.to_dict()
    assert data['ok'] is False
    assert data['problems'][0] == {'path': 'os', 'message': result.problems[0].message, 'line': 2}
    # Equality ignores the line number.
    assert Problem('os', 'm', 1) == Problem('os', 'm', 7)


# --------------------------------------------------------------------------
# Bundle checks
# --------------------------------------------------------------------------

SPEC_WITH_SCRIPT = ('version: 0.0\nos: linux\nfiles:\n  - source: {source}\n    destination: /opt/app\n'
                    'hooks:\n  ApplicationStart:\n    - location: {location}\n      timeout: 30\n')


def _check(location='scripts/start.sh', source='/', files=None):
    return validate(SPEC_WITH_SCRIPT.format(location=location, source=source),
                    bundle_files=files if files is not None else {'scripts/start.sh': (0o100755, GOOD_HEAD)})


def test_bundle_sources_file_dir_and_root():
    files = {'scripts/start.sh': (0o100755, GOOD_HEAD), 'web/static/app.js': (0o100644, b'')}
    for source in ('/', 'scripts', 'scripts/', 'web', 'web/static', 'web/static/app.js', './web', '/web'):
        result = _check(source=source, files=files)
        assert result.ok, (source, result.format())
    result = _check(source='webs', files=files)
    assert result.problems[0].path == 'files[0].source'
    assert "did you mean 'web'?" in result.problems[0].message


def test_bundle_explicit_empty_directory_counts():
    files = {'scripts/start.sh': (0o100755, GOOD_HEAD), 'empty/': (None, b'')}
    assert _check(source='empty', files=files).ok


def test_bundle_script_checks():
    # Leading ./ is fine.
    assert _check(location='./scripts/start.sh').ok
    # Not executable: warning only (the agent chmods it).
    result = _check(files={'scripts/start.sh': (0o100644, GOOD_HEAD)})
    assert result.ok and 'is not executable (mode 0644)' in result.warnings[0].message
    # Unknown mode (zip made without Unix attributes): no executable warning.
    assert not _check(files={'scripts/start.sh': (None, GOOD_HEAD)}).warnings
    # No shebang: warning; an ELF binary: fine; empty: warning.
    assert 'no shebang' in _check(files={'scripts/start.sh': (0o100755, b'echo hi\n')}).warnings[0].message
    assert _check(files={'scripts/start.sh': (0o100755, b'\x7fELF\x02\x01')}).warnings == []
    assert 'is empty' in _check(files={'scripts/start.sh': (0o100755, b'')}).warnings[0].message
    # CRLF shebang: error; CRLF further down: error too.
    crlf = _check(files={'scripts/start.sh': (0o100755, b'#!/bin/sh\r\nexit 0\r\n')})
    assert [p.path for p in crlf.problems] == ['hooks.ApplicationStart[0].location']
    assert "interpreter '/bin/sh\\r'" in crlf.problems[0].message
    body = _check(files={'scripts/start.sh': (0o100755, b'#!/bin/sh\nset -e\r\nexit 0\r\n')})
    assert 'CRLF (Windows) line endings' in body.problems[0].message
    # Missing script: error with a suggestion.
    missing = _check(location='scripts/strat.sh')
    assert "'scripts/strat.sh' is not in the bundle" in missing.problems[0].message
    assert "did you mean 'scripts/start.sh'?" in missing.problems[0].message


def test_bundle_callable_lookup():
    seen = []

    def lookup(path):
        seen.append(path)
        return {'scripts/start.sh': (0o100644, b'#!/bin/sh\n'),
                'scripts': (stat.S_IFDIR | 0o755, b'')}.get(path)

    result = validate(SPEC_WITH_SCRIPT.format(location='scripts/start.sh', source='scripts'),
                      bundle_files=lookup)
    assert result.ok and 'not executable' in result.warnings[0].message
    assert 'scripts/start.sh' in seen and 'scripts' in seen
    result = validate(SPEC_WITH_SCRIPT.format(location='scripts/nope.sh', source='nothing'), bundle_files=lookup)
    assert sorted(p.path for p in result.problems) == ['files[0].source', 'hooks.ApplicationStart[0].location']


def test_without_bundle_no_existence_checks():
    assert validate(SPEC_WITH_SCRIPT.format(location='scripts/anything.sh', source='whatever')).ok
