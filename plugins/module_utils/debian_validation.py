# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of a :class:`~debian_spec.PackageSpec` against Debian policy, before anything is built.

:func:`validate` returns *every* problem at once, as messages a person can act on (the module
joins them with ``'; '``, so no single message contains that).  The field checks
(:func:`validate_name`, :func:`validate_version`, :func:`validate_relationship`) are public too.
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ansible_collections.goship.deploy.plugins.module_utils.debian_scripts import DEBHELPER_TOKEN, systemd_snippets
from ansible_collections.goship.deploy.plugins.module_utils.debian_spec import (
    ARCHITECTURES,
    DEFAULT_DIR_MODE,
    DEFAULT_FILE_MODE,
    GOARCH_TO_DEBIAN,
    PRIORITIES,
    RELATIONSHIP_FIELDS,
    SCRIPT_NAMES,
    SYSTEMD_UNIT_DIRS,
    SYSTEMD_UNIT_SUFFIXES,
    DirectoryEntry,
    FileEntry,
    PackageSpec,
    SystemdUnit,
    effective_mtime,
    is_under,
    normalize_architecture,
    normpath,
)
from ansible_collections.goship.deploy.plugins.module_utils.reproducible import ReproducibleError, parse_mode
from ansible_collections.goship.deploy.plugins.module_utils.version import version_problems

__all__ = ['validate', 'validate_name', 'validate_version', 'validate_relationship']

NAME_EXAMPLE = "e.g. 'goship-agent'"
MAINTAINER_EXAMPLE = "e.g. 'Jane Doe <jane@example.com>'"

_NAME_RE = re.compile(r'^[a-z0-9][a-z0-9+.-]+$')
_MAINTAINER_RE = re.compile(r'^[^<>,\s][^<>,]*?\s+<[^<>@\s]+@[^<>@\s]+>$')
_UNIT_NAME_RE = re.compile(r'^[A-Za-z0-9:_.@\\-]+$')
_SECTION_RE = re.compile(r'^[a-z0-9][a-z0-9+./-]*$')

# Loose check of one relationship item: "pkg[:archqual] [(op version)] [[arch ...]]",
# alternatives separated with "|".
_REL_ALT = (r'[a-z0-9][a-z0-9+.-]+(?::[a-z0-9][a-z0-9-]*)?'
            r'(?:\s*\(\s*(?:<<|<=|=|>=|>>)\s*[^\s()]+\s*\))?'
            r'(?:\s*\[[^\[\]]+\])?')
_RELATION_RE = re.compile(r'^\s*%s(?:\s*\|\s*%s)*\s*$' % (_REL_ALT, _REL_ALT))


# --------------------------------------------------------------------------
# Field checks
# --------------------------------------------------------------------------

def validate_name(name: Any) -> List[str]:
    """Check a package name against Debian policy 5.6.1."""
    if not isinstance(name, str) or not name:
        return ["package name must not be empty (%s)" % NAME_EXAMPLE]
    if _NAME_RE.match(name):
        return []
    reasons = []
    if len(name) < 2:
        reasons.append('must be at least 2 characters long')
    if any(c.isupper() for c in name):
        reasons.append('must be lowercase')
    bad = sorted(set(c for c in name if not re.match(r'[a-z0-9+.-]', c.lower())))
    if bad:
        reasons.append('contains invalid character(s) %s' % ' '.join(repr(c) for c in bad))
    if not re.match(r'[a-z0-9]', name[0].lower()):
        reasons.append('must start with a letter or digit')
    if not reasons:  # pragma: no cover - defensive
        reasons.append('does not match [a-z0-9][a-z0-9+.-]+')
    return ["package name %r is invalid: %s (use lowercase letters, digits, '+', '-' and '.', %s)"
            % (name, ', '.join(reasons), NAME_EXAMPLE)]


def validate_version(version: Any) -> List[str]:
    """Check a version against the Debian syntax ``[epoch:]upstream[-revision]`` (numbers accepted).

    The rule itself is :func:`version.version_problems`, the one every entry point uses.
    """
    if isinstance(version, (int, float)) and not isinstance(version, bool):
        version = str(version)
    return version_problems(version)


def validate_relationship(item: Any) -> bool:
    """Loosely check one relationship entry (``pkg (>= 1.0) | other``)."""
    return isinstance(item, str) and bool(_RELATION_RE.match(item))


def _single_line(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != '' and '\n' not in value and '\r' not in value


def _check_abs_path(path: Any, what: str) -> Tuple[Optional[str], List[str]]:
    """Validate an absolute package path; return (normalized path, problems)."""
    if not isinstance(path, str) or not path:
        return None, ['%s must be a non-empty absolute path' % what]
    problems = []
    if not path.startswith('/'):
        problems.append("%s %r must be an absolute path (start with '/')" % (what, path))
    if '..' in path.split('/'):
        problems.append("%s %r must not contain '..'" % (what, path))
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        problems.append('%s %r must not contain newlines or control characters' % (what, path))
    if problems:
        return None, problems
    norm = normpath(path)
    if norm == '/':
        return None, ["%s must not be '/' itself" % what]
    return norm, []


# --------------------------------------------------------------------------
# validate() and its parts, in the order their problems are reported
# --------------------------------------------------------------------------

def validate(spec: PackageSpec, environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """Return every problem found in ``spec`` (empty list = valid)."""
    problems = _control_problems(spec) + _relationship_problems(spec)
    try:
        effective_mtime(spec, environ)
    except ReproducibleError as exc:
        problems.append(str(exc))
    file_problems, file_dests = _file_problems(spec)
    dir_problems, dir_paths = _directory_problems(spec, file_dests)
    problems += file_problems + dir_problems + _collision_problems(file_dests, dir_paths)
    problems += _conffile_problems(spec, file_dests)
    problems += _unit_problems(spec, file_dests)
    problems += _script_problems(spec)
    return problems


def _control_problems(spec: PackageSpec) -> List[str]:
    """The single-value control fields: name, version, architecture, maintainer, ..."""
    problems: List[str] = []
    problems += validate_name(spec.name)
    problems += validate_version(spec.version)

    if normalize_architecture(spec.architecture) is None:
        problems.append('architecture %r is not supported, use a Debian name (%s) or a GOARCH name (%s)'
                        % (spec.architecture, ', '.join(ARCHITECTURES), ', '.join(sorted(GOARCH_TO_DEBIAN))))

    if not isinstance(spec.maintainer, str) or not _MAINTAINER_RE.match(spec.maintainer.strip()):
        problems.append("maintainer %r must look like 'Name <email>' (%s)" % (spec.maintainer, MAINTAINER_EXAMPLE))

    if not isinstance(spec.description, str) or not spec.description.strip() \
            or not spec.description.lstrip('\n').split('\n', 1)[0].strip():
        problems.append('description must not be empty (its first line is the one-line synopsis)')

    if spec.section is not None and not (_single_line(spec.section) and _SECTION_RE.match(spec.section.strip())):
        problems.append("section %r is invalid (e.g. 'admin', 'net', 'misc')" % (spec.section,))
    if spec.priority is not None and spec.priority not in PRIORITIES:
        problems.append('priority %r is invalid; use one of %s' % (spec.priority, ', '.join(PRIORITIES)))
    if spec.homepage is not None and not (_single_line(spec.homepage) and ' ' not in spec.homepage.strip()):
        problems.append('homepage %r must be a single URL' % (spec.homepage,))
    return problems


def _relationship_problems(spec: PackageSpec) -> List[str]:
    problems = []
    for attr, _field_name in RELATIONSHIP_FIELDS:
        value = getattr(spec, attr)
        if value is None:
            continue
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            problems.append('%s must be a list of strings' % attr)
            continue
        for item in value:
            if isinstance(item, str) and ',' in item:
                problems.append('%s entry %r contains a comma, give one relationship per list item' % (attr, item))
            elif not validate_relationship(item):
                problems.append("%s entry %r is invalid, expected 'package', 'package (>= 1.0)' or 'a | b'"
                                % (attr, item))
    return problems


def _mode_and_owner_problems(label: str, entry: Union[FileEntry, DirectoryEntry], default_mode: int) -> List[str]:
    problems = []
    try:
        parse_mode(entry.mode, default_mode)
    except ReproducibleError as exc:
        problems.append('%s: %s' % (label, exc))
    for attr in ('owner', 'group'):
        if not _single_line(getattr(entry, attr)) or ' ' in getattr(entry, attr):
            problems.append('%s: %s %r is invalid' % (label, attr, getattr(entry, attr)))
    return problems


def _file_problems(spec: PackageSpec) -> Tuple[List[str], Dict[str, FileEntry]]:
    """Problems of ``files``, and the entries by normalized dest (for the checks after it)."""
    problems: List[str] = []
    file_dests: Dict[str, FileEntry] = {}
    for index, entry in enumerate(spec.files):
        if not isinstance(entry, FileEntry):
            problems.append('files[%d] must be a mapping with src and dest' % index)
            continue
        label = 'files[%d]' % index
        if not isinstance(entry.src, str) or not entry.src:
            problems.append('%s: src is required' % label)
        elif not os.path.exists(entry.src):
            problems.append('%s: src %s does not exist' % (label, entry.src))
        elif not os.path.isfile(entry.src):
            problems.append('%s: src %s is not a regular file' % (label, entry.src))
        dest, errs = _check_abs_path(entry.dest, '%s: dest' % label)
        problems += errs
        problems += _mode_and_owner_problems(label, entry, DEFAULT_FILE_MODE)
        if dest is not None:
            if dest in file_dests:
                problems.append('duplicate dest %s (files[%d] and %s)'
                                % (dest, index, 'files[%d]' % spec.files.index(file_dests[dest])))
            else:
                file_dests[dest] = entry
    return problems, file_dests


def _directory_problems(spec: PackageSpec,
                        file_dests: Dict[str, FileEntry]) -> Tuple[List[str], Dict[str, DirectoryEntry]]:
    problems: List[str] = []
    dir_paths: Dict[str, DirectoryEntry] = {}
    for index, entry in enumerate(spec.directories):
        if not isinstance(entry, DirectoryEntry):
            problems.append('directories[%d] must be a mapping with path' % index)
            continue
        label = 'directories[%d]' % index
        path, errs = _check_abs_path(entry.path, '%s: path' % label)
        problems += errs
        problems += _mode_and_owner_problems(label, entry, DEFAULT_DIR_MODE)
        if path is not None:
            if path in dir_paths:
                problems.append('duplicate directory path %s' % path)
            elif path in file_dests:
                problems.append('directory %s collides with a file of the same path' % path)
            dir_paths[path] = entry
    return problems, dir_paths


def _collision_problems(file_dests: Dict[str, FileEntry], dir_paths: Dict[str, DirectoryEntry]) -> List[str]:
    """A file dest must not be the parent directory of another entry."""
    problems = []
    all_paths = sorted(set(file_dests) | set(dir_paths))
    for dest in sorted(file_dests):
        for other in all_paths:
            if other != dest and is_under(other, dest):
                problems.append('file dest %s collides with directory %s needed by %s'
                                % (dest, dest, other))
                break
    return problems


def _conffile_problems(spec: PackageSpec, file_dests: Dict[str, FileEntry]) -> List[str]:
    problems: List[str] = []
    if spec.conffiles is None:
        for dest in file_dests:
            if is_under(dest, '/etc') and re.search(r'\s', dest):
                problems.append('file %r under /etc would be a conffile, which must not contain whitespace '
                                '(pass an explicit conffiles list)' % dest)
        return problems
    if isinstance(spec.conffiles, str) or not isinstance(spec.conffiles, (list, tuple)):
        return ['conffiles must be a list of absolute paths']
    seen = set()
    for path in spec.conffiles:
        norm, errs = _check_abs_path(path, 'conffile')
        problems += errs
        if norm is None:
            continue
        if re.search(r'\s', norm):
            problems.append('conffile %r must not contain whitespace' % path)
        elif norm not in file_dests:
            problems.append('conffile %s is not one of the packaged files' % norm)
        if norm in seen:
            problems.append('duplicate conffile %s' % norm)
        seen.add(norm)
    return problems


def _unit_problems(spec: PackageSpec, file_dests: Dict[str, FileEntry]) -> List[str]:
    problems = []
    unit_names = set()
    available_units = {posixpath.basename(d) for d in file_dests
                       if any(posixpath.dirname(d) == u for u in SYSTEMD_UNIT_DIRS)}
    for index, unit in enumerate(spec.systemd_units):
        if not isinstance(unit, SystemdUnit):
            problems.append('systemd_units[%d] must be a mapping with name' % index)
            continue
        name = unit.name
        if not isinstance(name, str) or not _UNIT_NAME_RE.match(name) \
                or not name.endswith(SYSTEMD_UNIT_SUFFIXES):
            problems.append('systemd unit %r is not a valid unit file name (e.g. goship.service)' % (name,))
            continue
        if '@.' in name:
            problems.append('systemd unit %s is a template, which cannot be enabled or started '
                            'without an instance (ship it in files only)' % name)
        if name in unit_names:
            problems.append('duplicate systemd unit %s' % name)
        unit_names.add(name)
        if name not in available_units:
            problems.append('systemd unit %s is not among files (expected a file with dest %s/%s or %s/%s)'
                            % (name, SYSTEMD_UNIT_DIRS[0], name, SYSTEMD_UNIT_DIRS[1], name))
        for attr in ('enable', 'start', 'restart_on_upgrade', 'stop_on_upgrade'):
            if not isinstance(getattr(unit, attr), bool):
                problems.append('systemd unit %s: %s must be a boolean' % (name, attr))
    return problems


def _script_problems(spec: PackageSpec) -> List[str]:
    if not isinstance(spec.scripts, Mapping):
        return ['scripts must be a mapping of script name to content']
    problems = []
    snippets = _safe_snippets(spec)
    for key, value in spec.scripts.items():
        if key not in SCRIPT_NAMES:
            problems.append('unknown maintainer script %r; use one of %s' % (key, ', '.join(SCRIPT_NAMES)))
            continue
        if not isinstance(value, str):
            problems.append('scripts.%s must be text' % key)
            continue
        if value.startswith('#!') and snippets.get(key) and DEBHELPER_TOKEN not in value:
            problems.append('scripts.%s is a complete script (starts with #!) but has no %s line: '
                            'add a line %s where the generated systemd snippets should go, '
                            'or drop the #! line to let them be placed automatically'
                            % (key, DEBHELPER_TOKEN, DEBHELPER_TOKEN))
    return problems


def _safe_snippets(spec: PackageSpec) -> Dict[str, str]:
    """The snippets of the units whose names are usable (the others are reported already)."""
    units = [u for u in spec.systemd_units
             if isinstance(u, SystemdUnit) and isinstance(u.name, str) and _UNIT_NAME_RE.match(u.name)]
    return systemd_snippets(units)
