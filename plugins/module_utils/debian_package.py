# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build Debian binary packages (.deb) in pure Python.

This module has no Ansible imports; ``plugins/modules/deb_build.py`` is a thin
wrapper around it.  Only the standard library is used (``tarfile``, ``gzip``,
``hashlib``), so no ``dpkg-deb`` is needed and it works on macOS controllers.

Entry points:

* :class:`PackageSpec` (+ :class:`FileEntry`, :class:`DirectoryEntry`,
  :class:`SystemdUnit`) describe the package; :meth:`PackageSpec.from_dict`
  builds one from plain dicts (module parameters).
* :func:`validate` returns *all* problems at once as a list of strings.
* :func:`build` returns the ``.deb`` bytes; :func:`build_package` returns a
  :class:`BuiltPackage` with the bytes plus control text/fields, contents,
  maintainer scripts, ...; :func:`list_contents` returns the contents list
  without building archives.
* :func:`read_control` extracts the ``control`` text from existing ``.deb``
  bytes (used for diff mode).

Reproducibility (``reproducible.py``, shared with the CodeDeploy bundles): all
timestamps are the same ``mtime`` (explicit, else ``SOURCE_DATE_EPOCH``, else 0),
ownership defaults to root/root (uid/gid 0), tar entries are sorted and written in
GNU format, gzip streams (level 9) carry mtime 0 and no file name.  Building the
same spec twice gives byte-identical output.

Maintainer scripts and ``#DEBHELPER#``: see :func:`assemble_script`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import math
import os
import posixpath
import re
import tarfile
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from ansible_collections.goship.deploy.plugins.module_utils import reproducible
from ansible_collections.goship.deploy.plugins.module_utils.reproducible import (  # parse_mode: re-exported
    ReproducibleError,
    TarMember,
    gzip_adaptive,
    parse_mode,
    path_sort_key,
    tar_archive,
)
from ansible_collections.goship.deploy.plugins.module_utils.version import version_problems

__all__ = [
    'ARCHITECTURES', 'GOARCH_TO_DEBIAN', 'RELATIONSHIP_FIELDS', 'SCRIPT_NAMES',
    'SYSTEMD_UNIT_DIRS', 'DEBHELPER_TOKEN',
    'FileEntry', 'DirectoryEntry', 'SystemdUnit', 'PackageSpec', 'BuiltPackage',
    'PackageValidationError', 'SourceReadError',
    'validate', 'validate_name', 'validate_version', 'validate_relationship',
    'normalize_architecture', 'parse_mode', 'effective_mtime',
    'build', 'build_package', 'list_contents', 'render_control',
    'format_description', 'systemd_snippets', 'assemble_script',
    'read_control', 'parse_control', 'ar_archive',
]

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

#: Debian architecture names accepted as-is.
ARCHITECTURES = ('amd64', 'arm64', 'armhf', 'i386', 'ppc64el', 's390x', 'riscv64', 'all')

#: Go's GOARCH names mapped to Debian architecture names.
GOARCH_TO_DEBIAN = {
    'amd64': 'amd64',
    'arm64': 'arm64',
    'arm': 'armhf',
    '386': 'i386',
    'ppc64le': 'ppc64el',
    's390x': 's390x',
    'riscv64': 'riscv64',
}

#: (spec attribute, control field name), in dpkg's conventional order.
RELATIONSHIP_FIELDS = (
    ('pre_depends', 'Pre-Depends'),
    ('depends', 'Depends'),
    ('recommends', 'Recommends'),
    ('suggests', 'Suggests'),
    ('conflicts', 'Conflicts'),
    ('breaks', 'Breaks'),
    ('replaces', 'Replaces'),
    ('provides', 'Provides'),
)

SCRIPT_NAMES = ('preinst', 'postinst', 'prerm', 'postrm')
PRIORITIES = ('required', 'important', 'standard', 'optional', 'extra')
SYSTEMD_UNIT_DIRS = ('/lib/systemd/system', '/usr/lib/systemd/system')
SYSTEMD_UNIT_SUFFIXES = ('.service', '.socket', '.timer', '.path', '.mount',
                         '.automount', '.swap', '.target', '.slice')
DEBHELPER_TOKEN = '#DEBHELPER#'
SCRIPT_HEADER = '#!/bin/sh\nset -e\n'

DEFAULT_SECTION = 'misc'
DEFAULT_PRIORITY = 'optional'
DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o755
#: gzip level of control.tar.gz and data.tar.gz (blocks that do not compress are stored: see
#: reproducible.gzip_adaptive). Another level changes every package's checksum. 6, not 9: a
#: third of the time for 0.6% more bytes on a Go binary.
GZIP_LEVEL = 6

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

AR_MAGIC = b'!<arch>\n'


# --------------------------------------------------------------------------
# Spec
# --------------------------------------------------------------------------

@dataclass
class FileEntry:
    """A regular file: read from ``src`` (controller path), installed at ``dest``."""
    src: str
    dest: str
    mode: Union[str, int] = '0644'
    owner: str = 'root'
    group: str = 'root'


@dataclass
class DirectoryEntry:
    """An explicit directory (parents of files are created automatically)."""
    path: str
    mode: Union[str, int] = '0755'
    owner: str = 'root'
    group: str = 'root'


@dataclass
class SystemdUnit:
    """A systemd unit shipped among ``files`` that gets maintainer-script snippets."""
    name: str
    enable: bool = True
    start: bool = True
    restart_on_upgrade: bool = True
    # With restart_on_upgrade false: false leaves the unit running through an upgrade
    # (debhelper's --no-stop-on-upgrade), e.g. a socket that must keep its port open.
    stop_on_upgrade: bool = True


@dataclass
class PackageSpec:
    name: str
    version: str
    maintainer: str
    description: str
    architecture: str = 'amd64'
    section: Optional[str] = None
    priority: Optional[str] = None
    homepage: Optional[str] = None
    pre_depends: List[str] = field(default_factory=list)
    depends: List[str] = field(default_factory=list)
    recommends: List[str] = field(default_factory=list)
    suggests: List[str] = field(default_factory=list)
    conflicts: List[str] = field(default_factory=list)
    breaks: List[str] = field(default_factory=list)
    replaces: List[str] = field(default_factory=list)
    provides: List[str] = field(default_factory=list)
    files: List[FileEntry] = field(default_factory=list)
    directories: List[DirectoryEntry] = field(default_factory=list)
    #: ``None`` = every packaged file under /etc; a list (even empty) overrides.
    conffiles: Optional[List[str]] = None
    #: script name (preinst/postinst/prerm/postrm) -> script text.
    scripts: Dict[str, str] = field(default_factory=dict)
    systemd_units: List[SystemdUnit] = field(default_factory=list)
    #: ``None`` = SOURCE_DATE_EPOCH from the environment, else 0.
    mtime: Optional[int] = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'PackageSpec':
        """Build a spec from plain data (e.g. Ansible module parameters).

        Keys that are ``None`` fall back to the dataclass defaults; nested
        ``files``/``directories``/``systemd_units`` may be dicts.  ``scripts``
        values may be strings or dicts with a ``content`` key.  Unknown keys
        are ignored.
        """
        def items(key, klass):
            out = []
            for item in data.get(key) or []:
                if isinstance(item, klass):
                    out.append(item)
                elif isinstance(item, Mapping):
                    names = klass.__dataclass_fields__  # type: ignore[attr-defined]
                    out.append(klass(**{k: v for k, v in item.items() if k in names and v is not None}))
                else:
                    out.append(item)  # reported by validate()
            return out

        scripts = {}
        for key, value in (data.get('scripts') or {}).items():
            if isinstance(value, Mapping):
                value = value.get('content')
            if value is not None:
                scripts[key] = value

        kwargs = {}
        for key in ('name', 'version', 'maintainer', 'description', 'architecture',
                    'section', 'priority', 'homepage', 'conffiles', 'mtime'):
            if data.get(key) is not None:
                kwargs[key] = data[key]
        for attr, _field in RELATIONSHIP_FIELDS:
            if data.get(attr) is not None:
                kwargs[attr] = list(data[attr])
        kwargs.setdefault('name', '')
        kwargs.setdefault('version', '')
        kwargs.setdefault('maintainer', '')
        kwargs.setdefault('description', '')
        return cls(files=items('files', FileEntry),
                   directories=items('directories', DirectoryEntry),
                   systemd_units=items('systemd_units', SystemdUnit),
                   scripts=scripts, **kwargs)


@dataclass
class BuiltPackage:
    data: bytes
    sha256: str
    control_text: str
    control: Dict[str, str]
    contents: List[Dict[str, Any]]
    scripts: Dict[str, str]
    conffiles: List[str]
    md5sums: str
    mtime: int


class PackageValidationError(ValueError):
    """The spec has problems; ``problems`` lists all of them."""

    def __init__(self, problems: List[str]):
        self.problems = list(problems)
        super().__init__('; '.join(self.problems))


class SourceReadError(OSError):
    """A source file could not be read (``path`` and ``reason`` set)."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__('cannot read %s: %s' % (path, reason))


# --------------------------------------------------------------------------
# Field validation helpers
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


def normalize_architecture(arch: Any) -> Optional[str]:
    """Return the Debian architecture name for a Debian or GOARCH name, else None."""
    if not isinstance(arch, str):
        return None
    if arch in ARCHITECTURES:
        return arch
    return GOARCH_TO_DEBIAN.get(arch)


def validate_relationship(item: Any) -> bool:
    """Loosely check one relationship entry (``pkg (>= 1.0) | other``)."""
    return isinstance(item, str) and bool(_RELATION_RE.match(item))


def effective_mtime(spec: PackageSpec, environ: Optional[Mapping[str, str]] = None) -> int:
    """Explicit ``spec.mtime``, else ``SOURCE_DATE_EPOCH``, else 0 (:func:`reproducible.effective_mtime`).

    Raises :class:`reproducible.ReproducibleError` (a ValueError).
    """
    return reproducible.effective_mtime(spec.mtime, environ)


def _single_line(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != '' and '\n' not in value and '\r' not in value


def _is_under(path: str, directory: str) -> bool:
    return path.startswith(directory.rstrip('/') + '/')


def _normpath(path: str) -> str:
    """posixpath.normpath, but '//x' (kept by POSIX rules) becomes '/x' too."""
    norm = posixpath.normpath(path)
    if norm.startswith('//'):
        norm = '/' + norm.lstrip('/')
    return norm


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
    norm = _normpath(path)
    if norm == '/':
        return None, ["%s must not be '/' itself" % what]
    return norm, []


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------

def validate(spec: PackageSpec, environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """Return every problem found in ``spec`` (empty list = valid)."""
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

    for attr, field_name in RELATIONSHIP_FIELDS:
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

    try:
        effective_mtime(spec, environ)
    except ReproducibleError as exc:
        problems.append(str(exc))

    # ---- files & directories -------------------------------------------
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
        try:
            parse_mode(entry.mode, DEFAULT_FILE_MODE)
        except ReproducibleError as exc:
            problems.append('%s: %s' % (label, exc))
        for attr in ('owner', 'group'):
            if not _single_line(getattr(entry, attr)) or ' ' in getattr(entry, attr):
                problems.append('%s: %s %r is invalid' % (label, attr, getattr(entry, attr)))
        if dest is not None:
            if dest in file_dests:
                problems.append('duplicate dest %s (files[%d] and %s)'
                                % (dest, index, 'files[%d]' % spec.files.index(file_dests[dest])))
            else:
                file_dests[dest] = entry

    dir_paths: Dict[str, DirectoryEntry] = {}
    for index, entry in enumerate(spec.directories):
        if not isinstance(entry, DirectoryEntry):
            problems.append('directories[%d] must be a mapping with path' % index)
            continue
        label = 'directories[%d]' % index
        path, errs = _check_abs_path(entry.path, '%s: path' % label)
        problems += errs
        try:
            parse_mode(entry.mode, DEFAULT_DIR_MODE)
        except ReproducibleError as exc:
            problems.append('%s: %s' % (label, exc))
        for attr in ('owner', 'group'):
            if not _single_line(getattr(entry, attr)) or ' ' in getattr(entry, attr):
                problems.append('%s: %s %r is invalid' % (label, attr, getattr(entry, attr)))
        if path is not None:
            if path in dir_paths:
                problems.append('duplicate directory path %s' % path)
            elif path in file_dests:
                problems.append('directory %s collides with a file of the same path' % path)
            dir_paths[path] = entry

    # A file dest must not be the parent directory of another entry.
    all_paths = sorted(set(file_dests) | set(dir_paths))
    for dest in sorted(file_dests):
        for other in all_paths:
            if other != dest and _is_under(other, dest):
                problems.append('file dest %s collides with directory %s needed by %s'
                                % (dest, dest, other))
                break

    # ---- conffiles -------------------------------------------------------
    if spec.conffiles is not None:
        if isinstance(spec.conffiles, str) or not isinstance(spec.conffiles, (list, tuple)):
            problems.append('conffiles must be a list of absolute paths')
        else:
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
    else:
        for dest in file_dests:
            if _is_under(dest, '/etc') and re.search(r'\s', dest):
                problems.append('file %r under /etc would be a conffile, which must not contain whitespace '
                                '(pass an explicit conffiles list)' % dest)

    # ---- systemd units -----------------------------------------------------
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

    # ---- scripts -------------------------------------------------------------
    if not isinstance(spec.scripts, Mapping):
        problems.append('scripts must be a mapping of script name to content')
    else:
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
    units = [u for u in spec.systemd_units
             if isinstance(u, SystemdUnit) and isinstance(u.name, str) and _UNIT_NAME_RE.match(u.name)]
    return systemd_snippets(units)


# --------------------------------------------------------------------------
# Maintainer scripts (systemd snippets, dh_installsystemd style)
# --------------------------------------------------------------------------

_CONFIGURE_COND = ('[ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || '
                   '[ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]')
_BEGIN = '# Automatically added by goship.deploy.deb_build'
_END = '# End automatically added section'


def _q(units: Iterable[str]) -> str:
    return ' '.join("'%s'" % u for u in units)


def systemd_snippets(units: List[SystemdUnit]) -> Dict[str, str]:
    """Generate maintainer-script snippets for ``units`` like dh_installsystemd.

    Returns ``{script name: snippet text}`` for postinst, prerm and postrm
    (empty dict without units).  Semantics, per unit:

    * postinst (configure/abort-*): ``deb-systemd-helper unmask``; with
      ``enable``: ``enable`` if ``was-enabled`` (true on first install, so
      new installs get enabled, and upgrades keep an admin's ``disable``),
      else ``update-state``.  Without ``enable`` only previously enabled
      units are re-enabled.  Then, if ``/run/systemd/system`` exists:
      ``systemctl --system daemon-reload`` and ``deb-systemd-invoke``:
      fresh install -> ``start`` (``start: true``); upgrade (``$2`` set) ->
      ``restart`` (``start`` + ``restart_on_upgrade``), ``try-restart``
      (``restart_on_upgrade`` only), ``start`` (``start`` only: it was
      stopped by prerm), nothing (``stop_on_upgrade: false``: it kept running).
    * prerm: ``deb-systemd-invoke stop`` on ``remove`` for all units; units
      with ``start`` but neither ``restart_on_upgrade`` nor ``stop_on_upgrade: false``
      are also stopped on upgrade (debhelper's ``--no-restart-after-upgrade``).
    * postrm: on ``remove`` ``systemctl --system daemon-reload``; on ``purge``
      ``deb-systemd-helper purge`` + ``unmask``.
    """
    units = sorted(units, key=lambda u: u.name)
    if not units:
        return {}
    names = [u.name for u in units]
    postinst: List[str] = []
    for unit in units:
        n = "'%s'" % unit.name
        if unit.enable:
            body = [
                'if %s ; then' % _CONFIGURE_COND,
                '\t# Only removes masks created by deb-systemd-helper on package removal.',
                '\tdeb-systemd-helper unmask %s >/dev/null || true' % n,
                '',
                '\t# was-enabled is true when the unit was never seen, so first installs enable it;',
                '\t# on upgrades an administrator\'s "systemctl disable" is respected.',
                '\tif deb-systemd-helper --quiet was-enabled %s; then' % n,
                '\t\tdeb-systemd-helper enable %s >/dev/null || true' % n,
                '\telse',
                '\t\t# Record new symlinks (removed again on purge), drop obsolete ones.',
                '\t\tdeb-systemd-helper update-state %s >/dev/null || true' % n,
                '\tfi',
                'fi',
            ]
        else:
            body = [
                'if %s ; then' % _CONFIGURE_COND,
                '\tif deb-systemd-helper debian-installed %s; then' % n,
                '\t\tdeb-systemd-helper unmask %s >/dev/null || true' % n,
                '\t\tif deb-systemd-helper --quiet was-enabled %s; then' % n,
                '\t\t\t# Enabled before (by the administrator): refresh its symlinks.',
                '\t\t\tdeb-systemd-helper enable %s >/dev/null || true' % n,
                '\t\tfi',
                '\tfi',
                '\tdeb-systemd-helper update-state %s >/dev/null || true' % n,
                'fi',
            ]
        postinst.append('\n'.join([_BEGIN] + body + [_END]))

    restart = [u.name for u in units if u.start and u.restart_on_upgrade]
    try_restart = [u.name for u in units if not u.start and u.restart_on_upgrade]
    start_after_stop = [u.name for u in units if u.start and not u.restart_on_upgrade and u.stop_on_upgrade]
    fresh_start = [u.name for u in units if u.start]
    body = [
        'if %s ; then' % _CONFIGURE_COND,
        '\tif [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then',
        '\t\tsystemctl --system daemon-reload >/dev/null || true',
    ]
    upgrade_cmds = []
    if restart:
        upgrade_cmds.append('deb-systemd-invoke restart %s >/dev/null || true' % _q(restart))
    if try_restart:
        upgrade_cmds.append('deb-systemd-invoke try-restart %s >/dev/null || true' % _q(try_restart))
    if start_after_stop:
        upgrade_cmds.append('deb-systemd-invoke start %s >/dev/null || true' % _q(start_after_stop))
    fresh_cmds = []
    if fresh_start:
        fresh_cmds.append('deb-systemd-invoke start %s >/dev/null || true' % _q(fresh_start))
    if upgrade_cmds or fresh_cmds:
        body.append('\t\tif [ -n "$2" ]; then')
        body += ['\t\t\t' + c for c in upgrade_cmds or [':']]
        body.append('\t\telse')
        body += ['\t\t\t' + c for c in fresh_cmds or [':']]
        body.append('\t\tfi')
    body += ['\tfi', 'fi']
    postinst.append('\n'.join([_BEGIN] + body + [_END]))

    stop_always = start_after_stop
    stop_on_remove = [n for n in names if n not in stop_always]
    body = ['if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then']
    if stop_on_remove:
        body += ['\tif [ "$1" = remove ]; then',
                 '\t\tdeb-systemd-invoke stop %s >/dev/null || true' % _q(stop_on_remove),
                 '\tfi']
    if stop_always:
        body.append('\tdeb-systemd-invoke stop %s >/dev/null || true' % _q(stop_always))
    body.append('fi')
    prerm = '\n'.join([_BEGIN] + body + [_END])

    postrm = '\n'.join([
        _BEGIN,
        'if [ "$1" = remove ] && [ -d /run/systemd/system ]; then',
        '\tsystemctl --system daemon-reload >/dev/null || true',
        'fi',
        'if [ "$1" = purge ]; then',
        '\tif [ -x /usr/bin/deb-systemd-helper ]; then',
        '\t\tdeb-systemd-helper purge %s >/dev/null || true' % _q(names),
        '\t\tdeb-systemd-helper unmask %s >/dev/null || true' % _q(names),
        '\tfi',
        'fi',
        _END,
    ])
    return {'postinst': '\n'.join(postinst), 'prerm': prerm, 'postrm': postrm}


def assemble_script(name: str, user: Optional[str], snippet: Optional[str]) -> Optional[str]:
    """Combine a user-supplied maintainer script with generated snippets.

    ``#DEBHELPER#`` handling (debhelper semantics, plus automatic placement for
    body-only scripts):

    * No user script: ``#!/bin/sh``, ``set -e`` and the snippet (or ``None``
      when there is no snippet either: the script is not shipped).
    * User text starting with ``#!`` is a complete script and is kept as is;
      the ``#DEBHELPER#`` token is replaced with the snippet (or with nothing).
      A complete script without the token while snippets exist is a
      validation error (:func:`validate`), as debhelper would silently drop
      them.
    * Otherwise the text is a script *body*: it gets the ``#!/bin/sh`` +
      ``set -e`` header.  If it contains ``#DEBHELPER#`` the snippet goes
      there; if not, the snippet is placed where debhelper's default
      templates put it: *after* the body for preinst/postinst (the service
      is enabled/started once the user's configuration step has run) and
      *before* the body for prerm/postrm (the service is stopped before the
      user's teardown runs).
    """
    snippet = (snippet or '').rstrip('\n')
    if not user or not user.strip():
        if not snippet:
            return None
        return SCRIPT_HEADER + '\n' + snippet + '\n'
    if user.startswith('#!'):
        if DEBHELPER_TOKEN not in user and snippet:
            raise PackageValidationError(['scripts.%s is a complete script but has no %s line'
                                          % (name, DEBHELPER_TOKEN)])
        text = user.replace(DEBHELPER_TOKEN, snippet)
    elif DEBHELPER_TOKEN in user:
        text = SCRIPT_HEADER + '\n' + user.replace(DEBHELPER_TOKEN, snippet)
    else:
        body = user.strip('\n')
        if not snippet:
            text = SCRIPT_HEADER + '\n' + body
        elif name in ('preinst', 'postinst'):
            text = SCRIPT_HEADER + '\n' + body + '\n\n' + snippet
        else:
            text = SCRIPT_HEADER + '\n' + snippet + '\n\n' + body
    if not text.endswith('\n'):
        text += '\n'
    return text


def _scripts(spec: PackageSpec) -> Dict[str, str]:
    snippets = systemd_snippets(list(spec.systemd_units))
    out = {}
    for name in SCRIPT_NAMES:
        text = assemble_script(name, spec.scripts.get(name), snippets.get(name))
        if text is not None:
            out[name] = text
    return out


# --------------------------------------------------------------------------
# Control file
# --------------------------------------------------------------------------

def format_description(description: str) -> str:
    """Return the Description field value (synopsis + indented extended lines)."""
    lines = description.strip('\n').split('\n')
    lines = [line.rstrip() for line in lines]
    synopsis = lines[0].strip()
    out = [synopsis]
    extended = lines[1:]
    while extended and not extended[-1].strip():
        extended.pop()
    while extended and not extended[0].strip():
        extended.pop(0)
    for line in extended:
        out.append(' .' if not line.strip() else ' ' + line)
    return '\n'.join(out)


def render_control(fields: List[Tuple[str, str]]) -> str:
    return ''.join('%s: %s\n' % (k, v) for k, v in fields)


def _control_fields(spec: PackageSpec, installed_size: int) -> List[Tuple[str, str]]:
    fields: List[Tuple[str, str]] = [
        ('Package', spec.name),
        ('Version', str(spec.version)),
        ('Architecture', normalize_architecture(spec.architecture) or spec.architecture),
        ('Maintainer', spec.maintainer.strip()),
        ('Installed-Size', str(installed_size)),
    ]
    for attr, field_name in RELATIONSHIP_FIELDS:
        items = [re.sub(r'\s+', ' ', i.strip()) for i in (getattr(spec, attr) or [])]
        if items:
            fields.append((field_name, ', '.join(items)))
    fields.append(('Section', (spec.section or DEFAULT_SECTION).strip()))
    fields.append(('Priority', spec.priority or DEFAULT_PRIORITY))
    if spec.homepage:
        fields.append(('Homepage', spec.homepage.strip()))
    fields.append(('Description', format_description(spec.description)))
    return fields


def parse_control(text: str) -> Dict[str, str]:
    """Parse a single control paragraph into ``{field: value}``.

    Continuation lines are kept (joined with newlines, leading space kept).
    """
    fields: Dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if not line.strip() and current is None:
            continue
        if not line.strip():
            break  # end of the first paragraph
        if line[0] in ' \t' and current is not None:
            fields[current] += '\n' + line
            continue
        key, sep, value = line.partition(':')
        if not sep:
            continue
        current = key.strip()
        fields[current] = value.strip()
    return fields


# --------------------------------------------------------------------------
# Archives
# --------------------------------------------------------------------------

@dataclass
class _Entry:
    path: str          # absolute path in the package, '/' for the root
    is_dir: bool
    mode: int
    owner: str
    group: str
    size: int = 0
    data: Optional[bytes] = None

    @property
    def tar_name(self) -> str:
        # './usr/bin/tool' for files, './usr/bin/' for directories (as dpkg-deb writes them).
        if self.path == '/':
            return './'
        return '.' + self.path + ('/' if self.is_dir else '')


def _plan(spec: PackageSpec, read: bool) -> List[_Entry]:
    """Compute the sorted list of data.tar entries (reading sources if ``read``)."""
    entries: Dict[str, _Entry] = {'/': _Entry('/', True, DEFAULT_DIR_MODE, 'root', 'root')}
    for entry in spec.directories:
        path = _normpath(entry.path)
        entries[path] = _Entry(path, True, parse_mode(entry.mode, DEFAULT_DIR_MODE), entry.owner, entry.group)
    for entry in spec.files:
        dest = _normpath(entry.dest)
        if read:
            data: Optional[bytes] = _read_file(entry.src)
            size = len(data)
        else:
            data = None
            size = _stat_size(entry.src)
        entries[dest] = _Entry(dest, False, parse_mode(entry.mode, DEFAULT_FILE_MODE), entry.owner, entry.group,
                               size=size, data=data)
    # Parent directories (0755 root/root unless given explicitly).
    for path in list(entries):
        parent = posixpath.dirname(path)
        while parent not in entries:
            entries[parent] = _Entry(parent, True, DEFAULT_DIR_MODE, 'root', 'root')
            parent = posixpath.dirname(parent)
    return [entries[p] for p in sorted(entries, key=path_sort_key)]


def _stat_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError as exc:
        raise SourceReadError(path, exc.strerror or str(exc))


def _read_file(path: str) -> bytes:
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except OSError as exc:
        raise SourceReadError(path, exc.strerror or str(exc))


def ar_archive(members: List[Tuple[str, bytes]], mtime: int) -> bytes:
    """Return a System V / GNU ``ar`` archive as dpkg-deb writes it."""
    out = [AR_MAGIC]
    for name, data in members:
        header = '%-16s%-12d%-6d%-6d%-8s%-10d`\n' % (name, mtime, 0, 0, '100644', len(data))
        encoded = header.encode('ascii')
        if len(encoded) != 60:  # a member name or size too long for the fixed-width header
            raise ValueError('ar header for %r is %d bytes, not 60' % (name, len(encoded)))
        out.append(encoded)
        out.append(data)
        if len(data) % 2:
            out.append(b'\n')
    return b''.join(out)


def _installed_size(entries: List[_Entry]) -> int:
    # As dpkg-gencontrol computes it: every regular file counts ceil(size/1024)
    # KiB, every other object (directories, including the root) counts 1 KiB.
    total = 0
    for entry in entries:
        if entry.is_dir:
            total += 1
        else:
            total += int(math.ceil(entry.size / 1024.0))
    return total


def _conffiles(spec: PackageSpec) -> List[str]:
    dests = [_normpath(f.dest) for f in spec.files]
    if spec.conffiles is not None:
        chosen = [_normpath(p) for p in spec.conffiles]
    else:
        chosen = [d for d in dests if _is_under(d, '/etc')]
    return sorted(set(chosen), key=path_sort_key)


def _contents(entries: List[_Entry]) -> List[Dict[str, Any]]:
    return [{
        'path': e.tar_name,
        'type': 'directory' if e.is_dir else 'file',
        'mode': '%04o' % e.mode,
        'size': e.size,
        'owner': e.owner,
        'group': e.group,
    } for e in entries]


def _check(spec: PackageSpec, environ: Optional[Mapping[str, str]]) -> int:
    problems = validate(spec, environ)
    if problems:
        raise PackageValidationError(problems)
    return effective_mtime(spec, environ)


def list_contents(spec: PackageSpec, environ: Optional[Mapping[str, str]] = None) -> List[Dict[str, Any]]:
    """The data.tar entries (path, type, mode, size, owner, group) without building."""
    _check(spec, environ)
    return _contents(_plan(spec, read=False))


def build_package(spec: PackageSpec, environ: Optional[Mapping[str, str]] = None) -> BuiltPackage:
    """Validate ``spec`` and build the package in memory.

    Raises :class:`PackageValidationError` (all problems) or
    :class:`SourceReadError` (a source file could not be read).
    """
    mtime = _check(spec, environ)
    entries = _plan(spec, read=True)

    data_tar_gz = gzip_adaptive(tar_archive([TarMember(e.tar_name, e.data, e.mode, e.owner, e.group) for e in entries],
                                         mtime), level=GZIP_LEVEL)
    md5_lines = ['%s  %s\n' % (hashlib.md5(e.data).hexdigest(), e.path.lstrip('/'))
                 for e in entries if not e.is_dir]

    fields = _control_fields(spec, _installed_size(entries))
    control_text = render_control(fields)
    md5sums = ''.join(md5_lines)
    conffiles = _conffiles(spec)
    scripts = _scripts(spec)

    control_members: Dict[str, Tuple[bytes, int]] = {'control': (control_text.encode('utf-8'), 0o644)}
    if md5sums:
        control_members['md5sums'] = (md5sums.encode('utf-8'), 0o644)
    if conffiles:
        control_members['conffiles'] = (''.join(c + '\n' for c in conffiles).encode('utf-8'), 0o644)
    for name, text in scripts.items():
        control_members[name] = (text.encode('utf-8'), 0o755)
    ctl = [TarMember('./', None, 0o755)]
    ctl += [TarMember('./' + name, payload, mode) for name, (payload, mode) in control_members.items()]
    control_tar_gz = gzip_adaptive(tar_archive(ctl, mtime), level=GZIP_LEVEL)

    deb = ar_archive([('debian-binary', b'2.0\n'),
                      ('control.tar.gz', control_tar_gz),
                      ('data.tar.gz', data_tar_gz)], mtime)
    return BuiltPackage(
        data=deb,
        sha256=hashlib.sha256(deb).hexdigest(),
        control_text=control_text,
        control=dict(fields),
        contents=_contents(entries),
        scripts=scripts,
        conffiles=conffiles,
        md5sums=md5sums,
        mtime=mtime,
    )


def build(spec: PackageSpec, environ: Optional[Mapping[str, str]] = None) -> bytes:
    """Validate ``spec`` and return the ``.deb`` bytes."""
    return build_package(spec, environ).data


# --------------------------------------------------------------------------
# Reading existing packages
# --------------------------------------------------------------------------

def _ar_members(data: bytes) -> Dict[str, bytes]:
    if not data.startswith(AR_MAGIC):
        raise ValueError('not an ar archive')
    members = {}
    pos = len(AR_MAGIC)
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        if header[58:60] != b'`\n':
            raise ValueError('bad ar member header')
        name = header[:16].decode('ascii', 'replace').strip().rstrip('/')
        size = int(header[48:58].decode('ascii').strip())
        pos += 60
        members[name] = data[pos:pos + size]
        pos += size + (size % 2)
    return members


def read_control(deb: bytes) -> Optional[str]:
    """Return the ``control`` file text of a ``.deb`` (gz/xz/uncompressed), or None."""
    try:
        members = _ar_members(deb)
        for name, payload in members.items():
            if not name.startswith('control.tar'):
                continue
            if name.endswith('.gz'):
                payload = gzip.decompress(payload)
            elif name.endswith('.xz'):
                payload = lzma.decompress(payload)
            elif name != 'control.tar':
                return None
            with tarfile.open(fileobj=io.BytesIO(payload), mode='r:') as tar:
                for info in tar.getmembers():
                    if info.name in ('./control', 'control') and info.isfile():
                        handle = tar.extractfile(info)
                        if handle is None:
                            return None
                        return handle.read().decode('utf-8', 'replace')
        return None
    except (ValueError, OSError, EOFError, tarfile.TarError, lzma.LZMAError, UnicodeError):
        return None
