# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build Debian binary packages (.deb) in pure Python: the entry point of the ``debian_*`` modules.

No Ansible imports (``plugins/modules/deb_build.py`` wraps it) and only the standard library, so
no ``dpkg-deb`` is needed and it works on macOS controllers.  Describe the package with
:class:`PackageSpec` (re-exported here with its parts, errors and :func:`validate`), then
:func:`build_package` (bytes plus control text/fields, contents, maintainer scripts, ...),
:func:`build` (bytes only) or :func:`list_contents` (no archives built).

The other layers: ``debian_spec`` (the spec, constants, errors), ``debian_validation``
(:func:`validate`), ``debian_scripts`` (maintainer scripts, ``#DEBHELPER#``), ``debian_format``
(control text, ``ar``, :func:`~debian_format.read_control` for diff mode).

Reproducibility (``reproducible.py``, shared with the CodeDeploy bundles): all timestamps are
the same ``mtime`` (explicit, else ``SOURCE_DATE_EPOCH``, else 0), ownership defaults to
root/root, tar entries are sorted and written in GNU format, gzip streams carry mtime 0 and no
file name.  Building the same spec twice gives byte-identical output.
"""

from __future__ import annotations

import hashlib
import math
import os
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.goship.deploy.plugins.module_utils.debian_format import (
    ar_archive,
    format_description,
    render_control,
)
from ansible_collections.goship.deploy.plugins.module_utils.debian_scripts import maintainer_scripts
from ansible_collections.goship.deploy.plugins.module_utils.debian_spec import (  # the spec: re-exported
    DEFAULT_DIR_MODE,
    DEFAULT_FILE_MODE,
    DEFAULT_PRIORITY,
    DEFAULT_SECTION,
    RELATIONSHIP_FIELDS,
    BuiltPackage,
    DirectoryEntry,
    FileEntry,
    PackageSpec,
    PackageValidationError,
    SourceReadError,
    SystemdUnit,
    effective_mtime,
    is_under,
    normalize_architecture,
    normpath,
)
from ansible_collections.goship.deploy.plugins.module_utils.debian_validation import (  # re-exported
    validate,
    validate_version,
)
from ansible_collections.goship.deploy.plugins.module_utils.reproducible import (
    TarMember,
    gzip_adaptive,
    parse_mode,
    path_sort_key,
    tar_archive,
)

__all__ = [
    'GZIP_LEVEL',
    'FileEntry', 'DirectoryEntry', 'SystemdUnit', 'PackageSpec', 'BuiltPackage',
    'PackageValidationError', 'SourceReadError', 'validate', 'validate_version',
    'build', 'build_package', 'list_contents',
]

#: gzip level of control.tar.gz and data.tar.gz (blocks that do not compress are stored: see
#: reproducible.gzip_adaptive). Another level changes every package's checksum. 6, not 9: a
#: third of the time for 0.6% more bytes on a Go binary.
GZIP_LEVEL = 6


# --------------------------------------------------------------------------
# data.tar: what the package installs
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
        path = normpath(entry.path)
        entries[path] = _Entry(path, True, parse_mode(entry.mode, DEFAULT_DIR_MODE), entry.owner, entry.group)
    for entry in spec.files:
        dest = normpath(entry.dest)
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
        raise SourceReadError(path, exc.strerror or str(exc)) from exc


def _read_file(path: str) -> bytes:
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except OSError as exc:
        raise SourceReadError(path, exc.strerror or str(exc)) from exc


def _contents(entries: List[_Entry]) -> List[Dict[str, Any]]:
    return [{
        'path': e.tar_name,
        'type': 'directory' if e.is_dir else 'file',
        'mode': '%04o' % e.mode,
        'size': e.size,
        'owner': e.owner,
        'group': e.group,
    } for e in entries]


# --------------------------------------------------------------------------
# control.tar: what dpkg knows about the package
# --------------------------------------------------------------------------

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
    dests = [normpath(f.dest) for f in spec.files]
    if spec.conffiles is not None:
        chosen = [normpath(p) for p in spec.conffiles]
    else:
        chosen = [d for d in dests if is_under(d, '/etc')]
    return sorted(set(chosen), key=path_sort_key)


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


def _control_tar_gz(control_text: str, md5sums: str, conffiles: List[str], scripts: Dict[str, str],
                    mtime: int) -> bytes:
    # tar_archive sorts the members, so the order of this dict does not reach the bytes.
    control_members: Dict[str, Tuple[bytes, int]] = {'control': (control_text.encode('utf-8'), 0o644)}
    if md5sums:
        control_members['md5sums'] = (md5sums.encode('utf-8'), 0o644)
    if conffiles:
        control_members['conffiles'] = (''.join(c + '\n' for c in conffiles).encode('utf-8'), 0o644)
    for name, text in scripts.items():
        control_members[name] = (text.encode('utf-8'), 0o755)
    ctl = [TarMember('./', None, 0o755)]
    ctl += [TarMember('./' + name, payload, mode) for name, (payload, mode) in control_members.items()]
    return gzip_adaptive(tar_archive(ctl, mtime), level=GZIP_LEVEL)


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------

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

    Raises :class:`PackageValidationError` (all problems) or :class:`SourceReadError` (a source
    file could not be read), both :class:`~errors.GoshipError`.
    """
    mtime = _check(spec, environ)
    entries = _plan(spec, read=True)

    data_tar_gz = gzip_adaptive(tar_archive([TarMember(e.tar_name, e.data, e.mode, e.owner, e.group) for e in entries],
                                            mtime), level=GZIP_LEVEL)
    md5sums = ''.join('%s  %s\n' % (hashlib.md5(e.data).hexdigest(), e.path.lstrip('/'))
                      for e in entries if not e.is_dir)
    fields = _control_fields(spec, _installed_size(entries))
    control_text = render_control(fields)
    conffiles = _conffiles(spec)
    scripts = maintainer_scripts(spec)
    control_tar_gz = _control_tar_gz(control_text, md5sums, conffiles, scripts, mtime)

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
