# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse and validate CodeDeploy AppSpec files for EC2/on-premises deployments.

No Ansible or boto3 imports: only the standard library and PyYAML (which
ansible-core depends on).  ``plugins/modules/codedeploy_revision.py`` calls
:func:`validate` before every upload; it is also usable on its own.

The real CodeDeploy agent is much more lenient than a deployment needs (see
``notes/codedeploy-agent.md`` beside DESIGN.md): it lets unknown keys, any
hook name, ``..`` locations, relative destinations, duplicate keys and
``runas`` values with shell syntax through, and crashes with Ruby errors on
malformed shapes.  This validator rejects all of that up front, and reports
*every* problem at once, each with its path in the AppSpec
(``hooks.BeforeInstall[0].timeout``, ``files[1].source``), never raising on
bad input.

Entry points
------------
* :func:`validate` (``text_or_mapping, bundle_files=None, os_family=None``)
  returns a :class:`Result` with ``problems`` (errors: the revision must not
  be uploaded), ``warnings`` (it works, but probably not as intended) and
  ``spec`` (the parsed mapping, or ``None`` when the text did not parse into
  a mapping).
* :func:`load` parses YAML text with the agent's restrictions (no aliases,
  no dates, no duplicate keys, one document) and returns ``(spec, problems)``.

``bundle_files`` describes the bundle the AppSpec ships in, so that file
sources and hook scripts can be checked: either a mapping of
path-in-bundle -> ``(mode, first_bytes)`` (``mode`` may be ``None`` when
unknown; directories may be listed with a ``stat.S_IFDIR`` mode or a trailing
``/``, or be implied by the files under them) or a callable
``lookup(path) -> (mode, first_bytes) | None`` (it must answer for
directories too, with a ``S_IFDIR`` mode).  ``codedeploy_bundle.read_bundle``
builds such a mapping from zip/tar bytes.

Rules with a choice behind them
-------------------------------
* Timeouts: each script's ``timeout`` must be an integer from 1 to 3600.
  The *sum* is enforced per lifecycle event: AWS documents 3600 s as the
  most all scripts of one lifecycle event may take together, and a script
  without ``timeout`` counts as the agent's default of 3600 s.  No limit is
  applied to the total over all events of a deployment (AWS has none per
  deployment; every event gets its own hour).
* Hook scripts in the bundle: not executable -> warning (the agent chmods
  them); no shebang -> warning (the agent runs them under /bin/sh); a CRLF
  shebang or CRLF line endings, or a location with whitespace -> error (they
  fail on the agent).
* ``version: 0`` works on the agent: warning, write ``0.0``.  A quoted
  ``"0.0"`` is rejected by the agent: error.
* Hooks on ApplicationStop, BeforeBlockTraffic and AfterBlockTraffic -> a
  warning: those events run the scripts of the *previously* deployed
  revision.
"""

from __future__ import annotations

import difflib
import posixpath
import re
import stat
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

# PyYAML ships with ansible-core, so it is always there on the controller, where the
# modules using this file run.  The guard keeps this file importable without it (as
# ansible-test's import sanity test requires); parsing YAML text then raises
# ImportError (see require_yaml).
try:
    import yaml
    HAS_YAML = True
    YAML_IMPORT_ERROR: Optional[str] = None
except ImportError:
    HAS_YAML = False
    YAML_IMPORT_ERROR = traceback.format_exc()

__all__ = [
    'HOOKABLE_EVENTS', 'RESERVED_EVENTS', 'PREVIOUS_REVISION_EVENTS', 'TOP_LEVEL_KEYS',
    'FILE_EXISTS_BEHAVIORS', 'OS_VALUES', 'MAX_TIMEOUT', 'DEFAULT_TIMEOUT', 'EVENT_TIME_LIMIT',
    'HOOK_KEYS', 'FILE_KEYS', 'PERMISSION_KEYS', 'USER_NAME_RE',
    'Problem', 'Result', 'load', 'validate', 'is_valid_user_name', 'HAS_YAML', 'YAML_IMPORT_ERROR', 'require_yaml',
]

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

#: Lifecycle events of an EC2/on-premises deployment that run scripts, in run order.
HOOKABLE_EVENTS = (
    'BeforeBlockTraffic', 'AfterBlockTraffic', 'ApplicationStop', 'BeforeInstall',
    'AfterInstall', 'ApplicationStart', 'ValidateService', 'BeforeAllowTraffic',
    'AfterAllowTraffic',
)
#: Lifecycle events that exist but are run by CodeDeploy itself: hooks on them never run.
RESERVED_EVENTS = ('Start', 'DownloadBundle', 'Install', 'BlockTraffic', 'AllowTraffic', 'End')
#: Events whose scripts come from the previously deployed revision.
PREVIOUS_REVISION_EVENTS = ('ApplicationStop', 'BeforeBlockTraffic', 'AfterBlockTraffic')
#: ECS/Lambda-only event names (the ones that are not also EC2 events).
_ECS_LAMBDA_EVENTS = ('AfterAllowTestTraffic', 'BeforeAllowTestTraffic')

TOP_LEVEL_KEYS = ('version', 'os', 'files', 'permissions', 'hooks', 'file_exists_behavior')
FILE_EXISTS_BEHAVIORS = ('DISALLOW', 'OVERWRITE', 'RETAIN')
OS_VALUES = ('linux', 'windows')
HOOK_KEYS = ('location', 'timeout', 'runas', 'sudo')
FILE_KEYS = ('source', 'destination')
PERMISSION_KEYS = ('object', 'pattern', 'except', 'owner', 'group', 'mode', 'acls', 'context', 'type')
PERMISSION_TYPES = ('file', 'directory')
CONTEXT_KEYS = ('name', 'type', 'range')

MAX_TIMEOUT = 3600          #: most seconds one script may take
DEFAULT_TIMEOUT = 3600      #: the agent's timeout for a script without ``timeout``
EVENT_TIME_LIMIT = 3600     #: most seconds all scripts of one lifecycle event may take

#: POSIX-portable user/group names (useradd's default NAME_REGEX, plus a trailing $).
USER_NAME_RE = re.compile(r'^[a-z_][a-z0-9_-]*[$]?$')
USER_NAME_MAX = 32
_SHELL_META_RE = re.compile(r'[\s;&|`$<>(){}\[\]\'"\\*?!#~=%^,]')
_MODE_RE = re.compile(r'^[0-7]{1,4}$')
_DISTRO_NAMES = ('ubuntu', 'debian', 'amazonlinux', 'amazon', 'al2', 'al2023', 'rhel', 'redhat',
                 'centos', 'fedora', 'suse', 'sles', 'rocky', 'alma', 'almalinux', 'unix')

_TAG = 'tag:yaml.org,2002:'
_SCALAR_TAGS = (_TAG + 'str', _TAG + 'int', _TAG + 'float', _TAG + 'bool', _TAG + 'null')
_ALIAS_TAG = 'goship:alias'

BundleFiles = Union[Mapping[str, Tuple[Optional[int], bytes]],
                    Callable[[str], Optional[Tuple[Optional[int], bytes]]]]


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One finding: ``path`` in the AppSpec ('' for the whole file) and a message."""

    path: str
    message: str
    line: Optional[int] = field(default=None, compare=False)

    def __str__(self) -> str:
        where = self.path or '(appspec)'
        if self.line:
            where += ' (line %d)' % self.line
        return '%s: %s' % (where, self.message)

    def to_dict(self) -> Dict[str, Any]:
        return {'path': self.path, 'message': self.message, 'line': self.line}


@dataclass
class Result:
    """What :func:`validate` found.  ``ok`` is true when there are no problems."""

    problems: List[Problem] = field(default_factory=list)
    warnings: List[Problem] = field(default_factory=list)
    spec: Optional[Dict[str, Any]] = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    def format(self) -> str:
        """Human-readable summary: one line per problem, then per warning."""
        lines = ['error: %s' % p for p in self.problems]
        lines += ['warning: %s' % w for w in self.warnings]
        return '\n'.join(lines)

    def to_dict(self) -> Dict[str, Any]:
        return {
            'ok': self.ok,
            'problems': [p.to_dict() for p in self.problems],
            'warnings': [w.to_dict() for w in self.warnings],
        }


# --------------------------------------------------------------------------
# YAML loading with the agent's restrictions
# --------------------------------------------------------------------------

class _OctalInt(int):
    """An int written with a leading zero (``0755``): YAML 1.1 reads it as octal."""

    source = ''


def require_yaml(what: str) -> None:
    """Raise ImportError saying that ``what`` needs PyYAML, when it could not be imported."""
    if not HAS_YAML:
        reason = (YAML_IMPORT_ERROR or '').strip().splitlines()
        raise ImportError('%s needs the Python library PyYAML (a dependency of ansible-core), which '
                          'could not be imported%s' % (what, ': ' + reason[-1] if reason else ''),
                          name='yaml')


if HAS_YAML:
    class _Loader(yaml.SafeLoader):
        """SafeLoader whose composer turns aliases into marker nodes instead of sharing nodes.

        The CodeDeploy agent's Ruby 3 loader rejects aliases; marking them lets the
        walker report each one at its path (and makes recursive documents harmless).
        """

        def __init__(self, stream):
            super().__init__(stream)
            self.anchored: Dict[int, str] = {}   # id(node) -> anchor name

        def compose_node(self, parent, index):  # noqa: D401 - PyYAML API
            if self.check_event(yaml.AliasEvent):
                event = self.get_event()
                return yaml.ScalarNode(_ALIAS_TAG, event.anchor, event.start_mark, event.end_mark)
            anchor = getattr(self.peek_event(), 'anchor', None)
            node = super().compose_node(parent, index)
            if anchor is not None:
                self.anchored[id(node)] = anchor
            return node


def _short_tag(tag: str) -> str:
    return '!!' + tag[len(_TAG):] if tag.startswith(_TAG) else tag


def _join(path: str, key: Any) -> str:
    return '%s.%s' % (path, key) if path else str(key)


def _index(path: str, i: int) -> str:
    return '%s[%d]' % (path, i)


class _Walker:
    """Build Python values from composed YAML nodes, recording problems with paths."""

    def __init__(self, loader: _Loader):
        self.loader = loader
        self.problems: List[Problem] = []
        self.lines: Dict[str, int] = {}
        self.alias_paths: List[str] = []
        self.warnings: List[Problem] = []

    def problem(self, path: str, message: str, node=None) -> None:
        line = node.start_mark.line + 1 if node is not None else self.lines.get(path)
        self.problems.append(Problem(path, message, line))

    def scalar(self, node, path: str) -> Any:
        tag = node.tag
        if tag == _ALIAS_TAG:
            self.alias_paths.append(path)
            self.problem(path, 'YAML alias *%s: the CodeDeploy agent\'s YAML loader rejects aliases '
                               'and anchors; write the value out in full' % node.value, node)
            return None
        if tag == _TAG + 'timestamp':
            self.problem(path, 'YAML reads %r as a date, which the CodeDeploy agent\'s YAML loader '
                               'rejects; quote it if it is meant as text' % node.value, node)
            return node.value
        if tag not in _SCALAR_TAGS:
            self.problem(path, 'YAML tag %s is not allowed in an appspec (the agent loads plain '
                               'strings, numbers, booleans, lists and mappings only)' % _short_tag(tag),
                         node)
            return node.value
        try:
            value = self.loader.construct_object(node, deep=True)
        except Exception as exc:  # pylint: disable=broad-except  # e.g. '!!int x' or '!!bool maybe'
            self.problem(path, 'cannot read %r as %s: %s' % (
                node.value, _short_tag(tag), getattr(exc, 'problem', None) or exc), node)
            return node.value
        if (tag == _TAG + 'int' and isinstance(value, int) and not isinstance(value, bool)
                and re.match(r'^[-+]?0[0-7_]+$', node.value)):
            octal = _OctalInt(value)
            octal.source = node.value
            return octal
        return value

    def build(self, node, path: str = '') -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        anchor = self.loader.anchored.get(id(node))
        if anchor is not None:
            self.warnings.append(Problem(path, 'YAML anchor &%s: harmless on its own, but the agent\'s YAML '
                                               'loader rejects any alias to it; remove the anchor' % anchor,
                                         node.start_mark.line + 1))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _TAG + 'seq':
                self.problem(path, 'YAML tag %s is not allowed in an appspec' % _short_tag(node.tag), node)
            return [self.build(child, _index(path, i)) for i, child in enumerate(node.value)]
        # MappingNode
        if node.tag != _TAG + 'map':
            self.problem(path, 'YAML tag %s is not allowed in an appspec' % _short_tag(node.tag), node)
        result: Dict[Any, Any] = {}
        first_line: Dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + 'merge':
                self.problem(path, 'YAML merge key (<<) is not supported by the CodeDeploy agent\'s '
                                   'YAML loader; write the keys out in full', key_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _ALIAS_TAG:
                self.problem(path, 'a mapping key must be a plain name, not a list, mapping or alias',
                             key_node)
                continue
            key = self.scalar(key_node, path)
            try:
                hash(key)
            except TypeError:  # pragma: no cover - scalars are hashable
                key = str(key)
            child = _join(path, key)
            if key in result:
                self.problem(child, 'duplicate key %r (first on line %d): the agent silently keeps '
                                    'only the last one' % (key, first_line[key]), key_node)
            else:
                first_line[key] = key_node.start_mark.line + 1
            self.lines[child] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, child)
        return result


def load(text: Union[str, bytes]) -> Tuple[Any, List[Problem], Dict[str, int]]:
    """Parse AppSpec YAML text: returns ``(value, problems, lines)``.

    ``value`` is ``None`` when the text is empty or does not parse; ``lines``
    maps paths to 1-based line numbers.  Never raises on bad input (only
    ImportError when PyYAML cannot be imported, see ``HAS_YAML``).
    """
    value, problems, lines = _load(text)[:3]
    return value, problems, lines


def _load(text: Union[str, bytes]) -> Tuple[Any, List[Problem], Dict[str, int], List[str], List[Problem]]:
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode('utf-8')
        except UnicodeDecodeError as exc:
            return None, [Problem('', 'the appspec is not UTF-8 text (%s)' % exc)], {}, [], []
    if not isinstance(text, str):
        return None, [Problem('', 'expected appspec text, got %s' % type(text).__name__)], {}, [], []
    require_yaml('parsing appspec YAML text')
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.composer.ComposerError as exc:
            if 'single document' in str(exc):
                line = exc.problem_mark.line + 1 if exc.problem_mark else None
                return None, [Problem('', 'the appspec holds more than one YAML document (---); the '
                                          'agent reads a single document', line)], {}, [], []
            return None, [_yaml_error(exc)], {}, [], []
        except yaml.YAMLError as exc:
            return None, [_yaml_error(exc)], {}, [], []
        if node is None:
            return None, [Problem('', 'the appspec is empty: it needs at least "version: 0.0" '
                                      'and "os: linux"')], {}, [], []
        walker = _Walker(loader)
        value = walker.build(node)
        return value, walker.problems, walker.lines, walker.alias_paths, walker.warnings
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, 'problem_mark', None)
    line = mark.line + 1 if mark is not None else None
    detail = ' '.join(str(part) for part in (getattr(exc, 'context', None), getattr(exc, 'problem', None))
                      if part) or str(exc)
    if mark is not None:
        detail += ' (line %d, column %d)' % (mark.line + 1, mark.column + 1)
    return Problem('', 'not valid YAML: %s' % detail, line)


# --------------------------------------------------------------------------
# Bundle lookups
# --------------------------------------------------------------------------

def _norm(path: str) -> str:
    """Normalise a path in the bundle: no leading ./ or /, '' for the root."""
    path = path.replace('\\', '/')
    path = posixpath.normpath('/' + path.lstrip('/'))
    return path.lstrip('/')


class _Bundle:
    def __init__(self, files: BundleFiles):
        self._lookup: Optional[Callable] = None
        self._files: Dict[str, Tuple[Optional[int], bytes]] = {}
        self._dirs = {''}
        if callable(files) and not isinstance(files, Mapping):
            self._lookup = files
            return
        for raw, info in files.items():
            if info is None:
                info = (None, b'')
            mode, head = (tuple(info) + (b'',))[:2] if isinstance(info, (tuple, list)) else (info, b'')
            is_dir = raw.endswith('/') or (mode is not None and stat.S_ISDIR(mode))
            path = _norm(raw)
            if is_dir:
                self._dirs.add(path)
            else:
                self._files[path] = (mode, head or b'')
            parent = posixpath.dirname(path)
            while parent:
                self._dirs.add(parent)
                parent = posixpath.dirname(parent)

    def kind(self, path: str) -> Optional[str]:
        """'file', 'dir' or None."""
        path = _norm(path)
        if self._lookup is not None:
            if path == '':
                return 'dir'
            info = self._lookup(path)
            if info is None:
                return None
            mode = info[0] if isinstance(info, (tuple, list)) else info
            return 'dir' if mode is not None and stat.S_ISDIR(mode) else 'file'
        if path in self._files:
            return 'file'
        if path in self._dirs:
            return 'dir'
        return None

    def info(self, path: str) -> Tuple[Optional[int], bytes]:
        path = _norm(path)
        if self._lookup is not None:
            info = self._lookup(path) or (None, b'')
            if not isinstance(info, (tuple, list)):
                info = (info, b'')
            return info[0], (info[1] if len(info) > 1 else b'') or b''
        return self._files.get(path, (None, b''))

    def suggestions(self, path: str) -> List[str]:
        if self._lookup is not None:
            return []
        candidates = sorted(self._files) + sorted(d for d in self._dirs if d)
        return difflib.get_close_matches(_norm(path), candidates, n=1, cutoff=0.6)


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------

def is_valid_user_name(name: Any) -> bool:
    """True for a plain POSIX user or group name (``USER_NAME_RE``, at most 32 chars)."""
    return (isinstance(name, str) and 0 < len(name) <= USER_NAME_MAX
            and USER_NAME_RE.match(name) is not None)


def _type_name(value: Any) -> str:
    if value is None:
        return 'nothing (null)'
    if isinstance(value, bool):
        return 'a boolean (%s)' % ('true' if value else 'false')
    if isinstance(value, str):
        return 'the string %r' % value
    if isinstance(value, (int, float)):
        return 'the number %r' % value
    if isinstance(value, list):
        return 'a list'
    if isinstance(value, dict):
        return 'a mapping'
    return 'a %s' % type(value).__name__


def _did_you_mean(word: Any, choices: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ''
    choices = list(choices)
    for choice in choices:
        if choice.lower() == word.lower():
            return '; did you mean %r?' % choice
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(word.lower(), [c.lower() for c in choices], n=1, cutoff=0.6)
        close = [c for c in choices if close and c.lower() == close[0]]
    return '; did you mean %r?' % close[0] if close else ''


class _Validator:
    def __init__(self, bundle: Optional[_Bundle], os_family: Optional[str], lines: Dict[str, int],
                 skip_paths: Iterable[str] = ()):
        self.bundle = bundle
        self.skip_paths = tuple(skip_paths)
        self.os_family = os_family
        self.lines = lines
        self.problems: List[Problem] = []
        self.warnings: List[Problem] = []

    # -- reporting
    def _skipped(self, path: str) -> bool:
        # Values behind a YAML alias are unknown (already reported): no follow-up errors there.
        return any(path == p or path.startswith(p + '.') or path.startswith(p + '[')
                   for p in self.skip_paths)

    def error(self, path: str, message: str) -> None:
        if self._skipped(path):
            return
        self.problems.append(Problem(path, message, self._line(path)))

    def warn(self, path: str, message: str) -> None:
        if self._skipped(path):
            return
        self.warnings.append(Problem(path, message, self._line(path)))

    def _line(self, path: str) -> Optional[int]:
        while path:
            if path in self.lines:
                return self.lines[path]
            parent = re.search(r'(\[\d+\]|\.[^.\[\]]*)$', path)
            path = path[:parent.start()] if parent else ''
        return None

    # -- top level
    def run(self, spec: Any) -> None:
        if not isinstance(spec, dict):
            self.error('', 'the appspec must be a mapping of keys (version, os, files, permissions, '
                           'hooks, file_exists_behavior), not %s' % _type_name(spec))
            return
        for key in spec:
            if key not in TOP_LEVEL_KEYS:
                self.unknown_top_level(key)
        self.check_version(spec)
        os_name = self.check_os(spec)
        if 'file_exists_behavior' in spec:
            self.check_file_exists_behavior(spec['file_exists_behavior'])
        if 'files' in spec:
            self.check_files(spec['files'])
        if 'permissions' in spec:
            self.check_permissions(spec['permissions'], os_name)
        if 'hooks' in spec:
            self.check_hooks(spec['hooks'])

    def unknown_top_level(self, key: Any) -> None:
        path = str(key)
        if key == 'resources':
            self.error(path, "'resources' belongs to ECS and Lambda appspecs; an EC2/on-premises "
                             "appspec has version, os, files, permissions, hooks and file_exists_behavior")
            return
        self.error(path, 'unknown top-level key %r (the agent ignores it silently); valid keys: %s%s'
                   % (key, ', '.join(TOP_LEVEL_KEYS), _did_you_mean(key, TOP_LEVEL_KEYS)))

    def check_version(self, spec: Dict) -> None:
        if 'version' not in spec:
            self.error('version', 'missing: add "version: 0.0" (the agent rejects an appspec without it)')
            return
        version = spec['version']
        if isinstance(version, bool):
            self.error('version', 'must be the number 0.0, not %s' % _type_name(version))
        elif isinstance(version, str):
            if version.strip() in ('0.0', '0', '0.00'):
                self.error('version', 'is the quoted string %r, which the agent rejects: write the YAML '
                                      'number without quotes, version: 0.0' % version)
            else:
                self.error('version', 'must be the number 0.0 (the only AppSpec version for EC2/'
                                      'on-premises), not %s' % _type_name(version))
        elif isinstance(version, int) and version == 0:
            self.warn('version', 'write "version: 0.0"; the agent accepts 0 but 0.0 is the documented value')
        elif isinstance(version, float) and version == 0.0:
            pass
        else:
            self.error('version', 'unsupported version %s: the only AppSpec version for EC2/on-premises '
                                  'deployments is 0.0' % _type_name(version))

    def check_os(self, spec: Dict) -> Optional[str]:
        if 'os' not in spec:
            self.error('os', 'missing: add "os: linux" (or "os: windows"); the agent rejects an '
                             'appspec without it')
            return None
        value = spec['os']
        if not isinstance(value, str):
            self.error('os', 'must be linux or windows, not %s' % _type_name(value))
            return None
        if value in OS_VALUES:
            if self.os_family and value != self.os_family:
                self.error('os', 'is %r but the deployment targets %s instances, whose agent rejects it'
                           % (value, self.os_family))
            return value
        if value.lower().strip() in OS_VALUES:
            self.error('os', '%r must be written exactly %r (lowercase, no spaces): the agent rejects '
                             'any other spelling' % (value, value.lower().strip()))
        elif value.lower() in _DISTRO_NAMES:
            self.error('os', '%r is a distribution; os names the platform family: use "linux"' % value)
        else:
            self.error('os', 'unsupported os %r: use "linux" (or "windows")' % value)
        return None

    def check_file_exists_behavior(self, value: Any) -> None:
        path = 'file_exists_behavior'
        if value in FILE_EXISTS_BEHAVIORS:
            return
        hint = _did_you_mean(value, FILE_EXISTS_BEHAVIORS) if isinstance(value, str) else ''
        self.error(path, 'must be one of DISALLOW, OVERWRITE or RETAIN (uppercase), not %s%s'
                   % (_type_name(value), hint))

    # -- files
    def check_files(self, files: Any) -> None:
        path = 'files'
        if files is None:
            self.warn(path, 'is empty; remove it or list {source, destination} entries')
            return
        if not isinstance(files, list):
            self.error(path, 'must be a list of entries like "- source: app/ / destination: /opt/app", '
                             'not %s' % _type_name(files))
            return
        for i, entry in enumerate(files):
            self.check_file_entry(entry, _index(path, i))

    def check_file_entry(self, entry: Any, path: str) -> None:
        if not isinstance(entry, dict):
            self.error(path, 'each files entry must be a mapping with source and destination, not %s'
                       % _type_name(entry))
            return
        for key in entry:
            if key not in FILE_KEYS:
                self.error(_join(path, key), 'unknown key %r in a files entry; valid keys: source, '
                                             'destination%s' % (key, _did_you_mean(key, FILE_KEYS)))
        source = entry.get('source')
        source_kind = None
        spath = _join(path, 'source')
        if 'source' not in entry or source is None or source == '':
            self.error(spath, 'missing: name a file or directory in the bundle ("/" for all of it)')
        elif not isinstance(source, str):
            self.error(spath, 'must be a path in the bundle, not %s' % _type_name(source))
            source = None
        elif '..' in source.replace('\\', '/').split('/'):
            self.error(spath, '%r must stay inside the bundle: ".." is not allowed' % source)
            source = None
        elif self.bundle is not None:
            source_kind = self.bundle.kind(source)
            if source_kind is None:
                hint = self.bundle.suggestions(source)
                self.error(spath, '%r is not in the bundle%s' % (
                    source, '; did you mean %r?' % hint[0] if hint else ''))
        dest = entry.get('destination')
        dpath = _join(path, 'destination')
        if 'destination' not in entry or dest is None or dest == '':
            self.error(dpath, 'missing: the absolute directory on the instance the source is copied into')
        elif not isinstance(dest, str):
            self.error(dpath, 'must be an absolute path on the instance, not %s' % _type_name(dest))
        elif not dest.startswith('/'):
            self.error(dpath, '%r must be an absolute path on the instance, such as /opt/app (the agent '
                              'does not check this)' % dest)
        elif (source_kind == 'file' and isinstance(source, str)
              and posixpath.basename(dest.rstrip('/')) == posixpath.basename(_norm(source))):
            self.warn(dpath, 'files are copied INTO the destination directory without renaming: this '
                             'installs %s' % posixpath.join(dest, posixpath.basename(_norm(source))))

    # -- permissions
    def check_permissions(self, permissions: Any, os_name: Optional[str]) -> None:
        path = 'permissions'
        if permissions is None:
            self.warn(path, 'is empty; remove it or list entries with an object')
            return
        if not isinstance(permissions, list):
            self.error(path, 'must be a list of entries like "- object: /opt/app / owner: app", not %s'
                       % _type_name(permissions))
            return
        if os_name == 'windows' and permissions:
            self.error(path, 'permissions are supported on Linux only; the agent rejects them with '
                             '"os: windows"')
        for i, entry in enumerate(permissions):
            self.check_permission(entry, _index(path, i))

    def check_permission(self, entry: Any, path: str) -> None:
        if not isinstance(entry, dict):
            self.error(path, 'each permissions entry must be a mapping with at least object, not %s'
                       % _type_name(entry))
            return
        for key in entry:
            if key not in PERMISSION_KEYS:
                self.error(_join(path, key), 'unknown key %r in a permissions entry; valid keys: %s%s'
                           % (key, ', '.join(PERMISSION_KEYS), _did_you_mean(key, PERMISSION_KEYS)))
        obj = entry.get('object')
        opath = _join(path, 'object')
        if obj is None or obj == '':
            self.error(opath, 'missing: the absolute path on the instance the permissions apply to '
                              '(the agent rejects an entry without it)')
        elif not isinstance(obj, str):
            self.error(opath, 'must be an absolute path on the instance, not %s' % _type_name(obj))
        elif not obj.startswith('/'):
            self.error(opath, '%r must be an absolute path on the instance' % obj)
        for key in ('owner', 'group'):
            if key in entry:
                value = entry[key]
                if not is_valid_user_name(value):
                    self.error(_join(path, key), '%s is not a valid %s name (lowercase letters, digits, '
                                                 '_ and -, at most 32 characters)'
                               % (_type_name(value), 'user' if key == 'owner' else 'group'))
        if 'mode' in entry:
            self.check_mode(entry['mode'], _join(path, 'mode'))
        if 'type' in entry:
            self.check_type_list(entry['type'], _join(path, 'type'))
        if 'pattern' in entry and not isinstance(entry['pattern'], str):
            self.error(_join(path, 'pattern'), 'must be a glob string such as "*.sh", not %s'
                       % _type_name(entry['pattern']))
        if 'except' in entry:
            value = entry['except']
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self.error(_join(path, 'except'), 'must be a list of glob strings, not %s' % _type_name(value))
        if 'acls' in entry:
            value = entry['acls']
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                self.error(_join(path, 'acls'), 'must be a list of ACL entries such as "u:app:rw", not %s'
                           % _type_name(value))
        if 'context' in entry:
            self.check_context(entry['context'], _join(path, 'context'))

    def check_mode(self, mode: Any, path: str) -> None:
        if isinstance(mode, _OctalInt):
            self.error(path, 'YAML reads %s as the octal number %d, so the agent would apply mode %d; '
                             'write the digits in quotes, mode: "%s"'
                       % (mode.source, int(mode), int(mode), mode.source.lstrip('+-')[1:] or '0'))
            return
        if isinstance(mode, bool) or not isinstance(mode, (int, str)):
            self.error(path, 'must be octal digits such as "755" or "0644", not %s' % _type_name(mode))
            return
        text = str(mode)
        if not _MODE_RE.match(text):
            self.error(path, '%r is not a permission mode: use 1 to 4 octal digits (0-7) such as "755" '
                             'or "0644"' % text)

    def check_type_list(self, value: Any, path: str) -> None:
        if isinstance(value, str):
            self.error(path, 'must be a list, e.g. "type: [%s]", not the string %r' % (value, value))
            return
        if not isinstance(value, list) or not value:
            self.error(path, 'must be a list of file and/or directory, not %s' % _type_name(value))
            return
        for i, item in enumerate(value):
            if item not in PERMISSION_TYPES:
                self.error(_index(path, i), '%s is not a permission type: use file or directory'
                           % _type_name(item))

    def check_context(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.error(path, 'must be a mapping with type (and optional name, range), not %s'
                       % _type_name(value))
            return
        for key in value:
            if key not in CONTEXT_KEYS:
                self.error(_join(path, key), 'unknown key %r in an SELinux context; valid keys: name, '
                                             'type, range' % (key,))
        if not isinstance(value.get('type'), str) or not value.get('type'):
            self.error(_join(path, 'type'), 'missing: an SELinux context needs a type (the agent rejects '
                                            'it without one)')

    # -- hooks
    def check_hooks(self, hooks: Any) -> None:
        path = 'hooks'
        if hooks is None:
            self.warn(path, 'is empty; remove it or map lifecycle events to scripts')
            return
        if not isinstance(hooks, dict):
            example = ''
            if isinstance(hooks, list) and hooks and isinstance(hooks[0], dict) and len(hooks[0]) == 1:
                example = ' (remove the "-" before the event names)'
            self.error(path, 'must be a mapping of lifecycle event name to a list of scripts, like '
                             '"AfterInstall: [{location: scripts/install.sh}]", not %s%s'
                       % (_type_name(hooks), example))
            return
        for event, scripts in hooks.items():
            epath = _join(path, event)
            self.check_event_name(event, epath)
            self.check_event_scripts(event, scripts, epath)

    def check_event_name(self, event: Any, path: str) -> None:
        if event in HOOKABLE_EVENTS:
            if event in PREVIOUS_REVISION_EVENTS:
                self.warn(path, '%s runs the scripts of the PREVIOUSLY deployed revision (not this '
                                'bundle\'s), and does nothing on a group\'s first deployment; this '
                                'bundle\'s script runs at the NEXT deployment, so it must never fail: a '
                                'broken one blocks every later deployment to the group' % event)
            return
        if not isinstance(event, str):
            self.error(path, 'lifecycle event names are strings such as AfterInstall, not %s'
                       % _type_name(event))
            return
        if event in RESERVED_EVENTS:
            alternatives = {
                'Install': 'BeforeInstall or AfterInstall',
                'DownloadBundle': 'BeforeInstall',
                'Start': 'ApplicationStop or BeforeBlockTraffic',
                'End': 'ValidateService or AfterAllowTraffic',
                'BlockTraffic': 'BeforeBlockTraffic or AfterBlockTraffic',
                'AllowTraffic': 'BeforeAllowTraffic or AfterAllowTraffic',
            }[event]
            self.error(path, '%s is run by CodeDeploy itself and can never run scripts (the agent '
                             'silently skips them); use %s' % (event, alternatives))
            return
        if event in _ECS_LAMBDA_EVENTS:
            self.error(path, '%s is an ECS/Lambda lifecycle event; EC2/on-premises deployments never '
                             'run it. Valid events: %s' % (event, ', '.join(HOOKABLE_EVENTS)))
            return
        self.error(path, 'unknown lifecycle event %r: the agent silently never runs it%s '
                         '(valid events: %s)' % (event, _did_you_mean(event, HOOKABLE_EVENTS),
                                                 ', '.join(HOOKABLE_EVENTS)))

    def check_event_scripts(self, event: Any, scripts: Any, path: str) -> None:
        if scripts is None:
            self.error(path, 'has no scripts: list at least one "- location: scripts/x.sh" or remove '
                             'the event')
            return
        if isinstance(scripts, dict):
            self.error(path, 'must be a list of scripts: put "- " before location (got a mapping)')
            return
        if not isinstance(scripts, list):
            self.error(path, 'must be a list of scripts like "- location: scripts/x.sh", not %s'
                       % _type_name(scripts))
            return
        if not scripts:
            self.error(path, 'has no scripts: list at least one "- location: scripts/x.sh" or remove '
                             'the event')
            return
        budget: List[Tuple[str, int, bool]] = []
        for i, script in enumerate(scripts):
            spath = _index(path, i)
            timeout = self.check_script(script, spath)
            if timeout is not None:
                budget.append(timeout)
        if len(scripts) > 1 and len(budget) == len(scripts):
            total = sum(seconds for _loc, seconds, _dflt in budget)
            if total > EVENT_TIME_LIMIT:
                parts = ', '.join('%s %d s%s' % (loc, t, ' (default)' if dflt else '')
                                  for loc, t, dflt in budget)
                self.error(path, 'the scripts of %s may take up to %d s together (%s); CodeDeploy allows '
                                 '%d s for all scripts of one lifecycle event: lower the timeouts (a '
                                 'script without timeout counts as %d s)'
                           % (event, total, parts, EVENT_TIME_LIMIT, DEFAULT_TIMEOUT))

    def check_script(self, script: Any, path: str) -> Optional[Tuple[str, int, bool]]:
        """Check one hook script entry; returns (location, timeout, defaulted) for the budget."""
        if isinstance(script, str):
            self.error(path, 'each script must be a mapping: write "- location: %s" (with optional '
                             'timeout and runas)' % script)
            return None
        if not isinstance(script, dict):
            self.error(path, 'each script must be a mapping with location (and optional timeout, runas), '
                             'not %s' % _type_name(script))
            return None
        for key in script:
            if key not in HOOK_KEYS:
                self.error(_join(path, key), 'unknown key %r in a hook script; valid keys: location, '
                                             'timeout, runas%s' % (key, _did_you_mean(key, HOOK_KEYS)))
        location = self.check_location(script, _join(path, 'location'))
        timeout = self.check_timeout(script, _join(path, 'timeout'))
        if 'runas' in script:
            self.check_runas(script['runas'], _join(path, 'runas'))
        if 'sudo' in script and not isinstance(script['sudo'], bool):
            self.error(_join(path, 'sudo'), 'must be true or false, not %s' % _type_name(script['sudo']))
        if timeout is None:
            return None
        return (location or '?', timeout[0], timeout[1])

    def check_location(self, script: Dict, path: str) -> Optional[str]:
        location = script.get('location')
        if location is None or (isinstance(location, str) and not location.strip()):
            self.error(path, 'missing: every hook script needs a location (the script\'s path in the '
                             'bundle); the agent rejects the appspec without it')
            return None
        if not isinstance(location, str):
            self.error(path, 'must be the script\'s path in the bundle, not %s' % _type_name(location))
            return None
        bad = False
        if location.startswith('/'):
            self.error(path, '%r must be relative to the bundle root (e.g. scripts/start.sh), without a '
                             'leading /' % location)
            bad = True
        if '..' in location.replace('\\', '/').split('/'):
            self.error(path, '%r must stay inside the bundle: ".." is not allowed' % location)
            bad = True
        if re.search(r'\s', location):
            self.error(path, '%r contains whitespace: the agent fails to run such a script; rename it'
                       % location)
            bad = True
        if '\\' in location:
            self.error(path, '%r uses backslashes: use / as the path separator' % location)
            bad = True
        if bad or self.bundle is None:
            return location
        kind = self.bundle.kind(location)
        if kind is None:
            hint = self.bundle.suggestions(location)
            self.error(path, '%r is not in the bundle (the deployment would fail with "script does not '
                             'exist")%s' % (location, '; did you mean %r?' % hint[0] if hint else ''))
        elif kind == 'dir':
            self.error(path, '%r is a directory in the bundle, not a script' % location)
        else:
            self.check_script_file(location, path)
        return location

    def check_script_file(self, location: str, path: str) -> None:
        mode, head = self.bundle.info(location)
        head = bytes(head or b'')
        if mode is not None and not mode & 0o111:
            self.warn(path, '%r is not executable (mode %04o); the agent makes it executable, but ship '
                            'it with mode 0755' % (location, stat.S_IMODE(mode)))
        if head.startswith(b'\x7fELF'):
            return
        first_line = head.split(b'\n', 1)[0]
        if head.startswith(b'#!'):
            if first_line.endswith(b'\r'):
                self.error(path, '%r has a CRLF (Windows) line ending on its shebang line: the kernel '
                                 'looks for the interpreter %r, which does not exist; convert the script '
                                 'to LF line endings'
                           % (location, first_line[2:].strip(b' ').decode('utf-8', 'replace')))
                return
        elif head:
            self.warn(path, '%r has no shebang (#!) line; the agent runs it under /bin/sh' % location)
        else:
            self.warn(path, '%r is empty' % location)
        if b'\r\n' in head and b'\0' not in head:
            self.error(path, '%r has CRLF (Windows) line endings; the shell reads the \\r as part of '
                             'each command: convert it to LF line endings' % location)

    def check_timeout(self, script: Dict, path: str) -> Optional[Tuple[int, bool]]:
        """Returns (seconds, defaulted) when the timeout is usable for the per-event budget."""
        if 'timeout' not in script:
            return (DEFAULT_TIMEOUT, True)
        value = script['timeout']
        if value is None:
            self.error(path, 'is empty: give a whole number of seconds from 1 to %d, or remove it '
                             '(default %d)' % (MAX_TIMEOUT, DEFAULT_TIMEOUT))
            return None
        if isinstance(value, bool):
            self.error(path, 'must be a whole number of seconds from 1 to %d, not %s'
                       % (MAX_TIMEOUT, _type_name(value)))
            return None
        if isinstance(value, float):
            if value.is_integer() and 1 <= value <= MAX_TIMEOUT:
                self.error(path, 'must be a whole number of seconds: write %d, not %r' % (int(value), value))
            elif 0 < value < 1:
                self.error(path, '%r is a fraction of a second: the agent truncates it to 0 and rejects '
                                 'it; timeouts are whole seconds from 1 to %d' % (value, MAX_TIMEOUT))
            else:
                self.error(path, 'must be a whole number of seconds from 1 to %d, not %r'
                           % (MAX_TIMEOUT, value))
            return None
        if isinstance(value, str):
            text = value.strip()
            if re.match(r'^\d+$', text):
                self.error(path, 'is the quoted string %r: write the number without quotes, timeout: %s'
                           % (value, text))
            elif re.match(r'^\d+\s*[A-Za-z]+$', text):
                number = re.match(r'^\d+', text).group(0)
                self.error(path, '%r has a unit: timeouts are plain seconds, write timeout: N. The agent '
                                 'keeps only the leading digits (%r becomes %s seconds, so "2m" would be 2 '
                                 'seconds)' % (value, value, number))
            else:
                self.error(path, '%r is not a number of seconds: write a whole number from 1 to %d '
                                 '(the agent rejects it)' % (value, MAX_TIMEOUT))
            return None
        if not isinstance(value, int):
            self.error(path, 'must be a whole number of seconds from 1 to %d, not %s'
                       % (MAX_TIMEOUT, _type_name(value)))
            return None
        if value < 1:
            self.error(path, '%d is too small: a timeout must be at least 1 second (the agent rejects '
                             '%d)' % (value, value))
            return None
        if value > MAX_TIMEOUT:
            self.error(path, '%d s is above %d s (one hour), the most a lifecycle event\'s scripts may '
                             'take; the agent accepts it but CodeDeploy fails the event at one hour'
                       % (value, MAX_TIMEOUT))
            return None
        return (value, False)

    def check_runas(self, value: Any, path: str) -> None:
        if value is None or value == '':
            self.error(path, 'is empty: name a user, or remove runas to run the script as root')
            return
        if not isinstance(value, str):
            self.error(path, 'must be a user name, not %s' % _type_name(value))
            return
        if is_valid_user_name(value):
            return
        if _SHELL_META_RE.search(value):
            self.error(path, '%r is not a plain user name: the agent passes runas unquoted to '
                             '"su <runas> -c <script>" through a shell, so everything after the user '
                             'name would run as a shell command as root (and the hook would succeed '
                             'without running the script)' % value)
        elif len(value) > USER_NAME_MAX:
            self.error(path, '%r is longer than %d characters, not a valid user name'
                       % (value, USER_NAME_MAX))
        else:
            self.error(path, '%r is not a valid user name: lowercase letters, digits, _ and -, starting '
                             'with a letter or _' % value)


def validate(text_or_mapping: Union[str, bytes, Mapping[str, Any]],
             bundle_files: Optional[BundleFiles] = None,
             os_family: Optional[str] = None) -> Result:
    """Validate an AppSpec for an EC2/on-premises deployment; never raises on bad input.

    :param text_or_mapping: the appspec.yml text (str or bytes), or an already
        parsed mapping (then the YAML-level checks — aliases, dates,
        duplicate keys, quoting of ``version`` — cannot apply, except that a
        str ``version`` is still reported).  Text needs PyYAML: without it
        (``HAS_YAML`` false) this raises ImportError; a mapping does not.
    :param bundle_files: the bundle's files, see the module docstring; when
        given, every ``files`` source and every hook ``location`` must exist
        in it, and hook scripts are checked (executable, shebang, CRLF).
    :param os_family: ``'linux'`` or ``'windows'`` when the target instances
        are known: an ``os`` naming the other family is then an error.
    :returns: :class:`Result`; ``spec`` is the parsed mapping (even when it
        has problems) or ``None`` when the input is not a mapping.
    """
    lines: Dict[str, int] = {}
    alias_paths: List[str] = []
    yaml_warnings: List[Problem] = []
    if isinstance(text_or_mapping, Mapping):
        spec: Any = dict(text_or_mapping)
        problems: List[Problem] = []
    else:
        spec, problems, lines, alias_paths, yaml_warnings = _load(text_or_mapping)
        if spec is None and problems:
            return Result(problems=problems, warnings=[], spec=None)
    bundle = _Bundle(bundle_files) if bundle_files is not None else None
    validator = _Validator(bundle, os_family, lines, alias_paths)
    validator.run(spec)
    return Result(problems=_by_line(problems + validator.problems),
                  warnings=_by_line(yaml_warnings + validator.warnings),
                  spec=spec if isinstance(spec, dict) else None)


def _by_line(problems: List[Problem]) -> List[Problem]:
    # Stable: problems without a line (whole-file ones) first, then in file order.
    return sorted(problems, key=lambda p: p.line or 0)
