# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reproducible CodeDeploy revision bundles (zip, tgz or tar): build, read, validate.

The bottom layer of the bundle code: :class:`BundleError` (the bundle path's one error),
the archives, and appspec.yml rendered from structured input.  The hook scripts are in
``codedeploy_hooks``, the standard Go service bundle in ``codedeploy_go_service``, the
module's ``bundle`` option in ``codedeploy_revision_bundle``.  No Ansible or boto3 imports
(standard library + PyYAML through ``appspec``).

* :func:`build_bundle` (``appspec_text, files, fmt, mtime``) -> bytes: appspec.yml
  at the root plus ``files`` (``(source, path_in_bundle, mode)``, where source is a
  path on disk or the content as bytes).
* :func:`appspec_from_structure` renders a deterministic appspec.yml from
  structured input (files, permissions, hooks, file_exists_behavior).
* :func:`read_bundle` indexes existing bundle bytes (appspec text + a
  ``path -> (mode, first_bytes)`` mapping for ``appspec.validate``);
  :func:`validate_bundle` validates a bundle as it would be uploaded.

Reproducibility: same inputs, same bytes.  Entries are sorted by path, parent
directories get explicit entries (mode 0755), every timestamp is ``mtime``
(explicit, else ``SOURCE_DATE_EPOCH``, else 0), owners are root/root (uid/gid
0); the timestamp rule, modes, tar and gzip come from ``reproducible.py``,
shared with the .deb builder.  Zip: DOS date from ``mtime`` in UTC (clamped to
1980-01-01..2107-12-31, 2 s resolution, so mtimes in the same 2-second window
give the same zip), Unix modes in ``external_attr``, ``create_system`` 3, no
extra fields, DEFLATE level 6.  Tar: GNU format (no pax headers, no
atime/ctime); tgz adds a gzip stream with mtime 0, no file name, level 6.  The
compressed bytes depend on the zlib build, so compare bundles built by the same
Python/zlib.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
import stat
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

# PyYAML ships with ansible-core; appspec guards its import (HAS_YAML) and require_yaml()
# raises the clear ImportError before anything here uses the module.
try:
    import yaml
except ImportError:
    pass

from ansible_collections.goship.deploy.plugins.module_utils import reproducible
from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError
from ansible_collections.goship.deploy.plugins.module_utils.reproducible import (
    ReproducibleError,
    TarMember,
    gzip_bytes,
    parse_mode,
    path_sort_key,
    tar_archive,
)
from ansible_collections.goship.deploy.plugins.module_utils.appspec import (
    HAS_YAML,
    YAML_IMPORT_ERROR,
    HOOKABLE_EVENTS,
    PERMISSION_KEYS,
    Problem,
    Result,
    require_yaml,
    validate,
)

__all__ = [
    'FORMATS', 'APPSPEC_NAME', 'FILE_MODE', 'SCRIPT_MODE', 'BundleError', 'BundleContents', 'FileSpec',
    'build_bundle', 'bundle_entries', 'appspec_from_structure', 'read_bundle', 'validate_bundle',
    'effective_mtime', 'HAS_YAML', 'YAML_IMPORT_ERROR',
]

FORMATS = ('zip', 'tgz', 'tar')
APPSPEC_NAME = 'appspec.yml'
FILE_MODE = 0o644
SCRIPT_MODE = 0o755
DIR_MODE = 0o755
#: zip DEFLATE and tgz gzip level: another level changes every bundle's checksum.
COMPRESS_LEVEL = 6
HEAD_BYTES = 1024          #: bytes of each file kept by read_bundle for the script checks
_ZIP_MIN = (1980, 1, 1, 0, 0, 0)
_ZIP_MAX = (2107, 12, 31, 23, 59, 58)

FileSource = Union[str, bytes, 'os.PathLike[str]']
FileSpec = Tuple[FileSource, str, Union[int, str, None]]


class BundleError(GoshipError, ValueError):
    """Bad input for a bundle; ``problems`` lists every reason (one line each), also in the details.

    The message is the problems joined with '; ' unless ``message`` says more.  Also a
    ``ValueError``, which it always was (callers that catch that keep working).
    """

    def __init__(self, problems: Union[str, Sequence[Any]], message: Optional[str] = None):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = [str(p) for p in problems]
        super().__init__(message or '; '.join(self.problems), {'problems': self.problems})


# --------------------------------------------------------------------------
# Bundles
# --------------------------------------------------------------------------

def effective_mtime(mtime: Optional[int] = None, environ: Optional[Mapping[str, str]] = None) -> int:
    """``mtime`` if given, else ``SOURCE_DATE_EPOCH``, else 0 (:func:`reproducible.effective_mtime`).

    Raises :class:`BundleError`, this module's one error for bad input.
    """
    try:
        return reproducible.effective_mtime(mtime, environ)
    except ReproducibleError as exc:
        raise BundleError(exc.message)


def _check_bundle_path(path: Any) -> Optional[str]:
    if not isinstance(path, str) or not path:
        return 'path in the bundle must be a non-empty string, not %r' % (path,)
    if path.startswith('/'):
        return 'path in the bundle %r must be relative (no leading /)' % path
    if '\\' in path or '\0' in path or '\n' in path or '\r' in path:
        return 'path in the bundle %r must not contain backslashes or control characters' % path
    parts = path.split('/')
    if any(part in ('', '.', '..') for part in parts):
        return 'path in the bundle %r must be normalised (no empty, "." or ".." parts)' % path
    return None


def bundle_entries(appspec_text: Union[str, bytes],
                   files: Iterable[FileSpec] = ()) -> List[Tuple[str, Optional[bytes], int]]:
    """Sorted entries ``(path, data, mode)`` of a bundle; ``data`` is None for directories.

    Raises :class:`BundleError` listing every bad entry (unreadable source,
    duplicate or conflicting path, appspec.yml given twice, bad mode).
    """
    problems: List[str] = []
    appspec_bytes = appspec_text.encode('utf-8') if isinstance(appspec_text, str) else bytes(appspec_text)
    entries: Dict[str, Tuple[bytes, int]] = {APPSPEC_NAME: (appspec_bytes, FILE_MODE)}
    for item in files:
        try:
            source, path, mode = item
        except (TypeError, ValueError):
            problems.append('each file must be (source, path_in_bundle, mode), not %r' % (item,))
            continue
        reason = _check_bundle_path(path)
        if reason:
            problems.append(reason)
            continue
        if path == APPSPEC_NAME:
            problems.append('appspec.yml is written by the bundle builder; do not list it in files')
            continue
        if path in entries:
            problems.append('%r is listed twice' % path)
            continue
        try:
            if isinstance(source, (bytes, bytearray)):
                data = bytes(source)
                default_mode = FILE_MODE
            else:
                with open(source, 'rb') as handle:
                    data = handle.read()
                default_mode = SCRIPT_MODE if os.stat(source).st_mode & 0o111 else FILE_MODE
            entries[path] = (data, parse_mode(mode, default_mode))
        except ReproducibleError as exc:
            problems.append('%s: %s' % (path, exc))
        except OSError as exc:
            problems.append('%s: cannot read %s: %s' % (path, source, exc.strerror or exc))
    dirs = set()
    for path in entries:
        parent = posixpath.dirname(path)
        while parent:
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    for conflict in sorted(dirs & set(entries)):
        problems.append('%r is both a file and a directory in the bundle' % conflict)
    if problems:
        raise BundleError(problems)
    result: List[Tuple[str, Optional[bytes], int]] = [(d, None, DIR_MODE) for d in dirs]
    result += [(p, data, mode) for p, (data, mode) in entries.items()]
    # Sort by path components so a directory comes right before its contents.
    result.sort(key=lambda e: path_sort_key(e[0]))
    return result


def _zip_date_time(mtime: int) -> Tuple[int, int, int, int, int, int]:
    stamp = tuple(time.gmtime(mtime)[:6])
    if stamp < _ZIP_MIN:
        return _ZIP_MIN
    if stamp > _ZIP_MAX:
        return _ZIP_MAX
    return stamp  # type: ignore[return-value]


def _build_zip(entries: List[Tuple[str, Optional[bytes], int]], mtime: int) -> bytes:
    out = io.BytesIO()
    date_time = _zip_date_time(mtime)
    with zipfile.ZipFile(out, 'w') as archive:
        for path, data, mode in entries:
            if data is None:
                info = zipfile.ZipInfo(path + '/', date_time)
                info.external_attr = ((stat.S_IFDIR | mode) << 16) | 0x10
                info.compress_type = zipfile.ZIP_STORED
                data = b''
            else:
                info = zipfile.ZipInfo(path, date_time)
                info.external_attr = (stat.S_IFREG | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.extra = b''
            info.comment = b''
            archive.writestr(info, data, compresslevel=COMPRESS_LEVEL)
    return out.getvalue()


def build_bundle(appspec_text: Union[str, bytes], files: Iterable[FileSpec] = (), fmt: str = 'zip',
                 mtime: Optional[int] = None) -> bytes:
    """Build a bundle with appspec.yml at its root; same inputs, same bytes.

    :param files: ``(source, path_in_bundle, mode)`` items; ``source`` is a path
        on disk or the file's content as bytes; ``mode`` an int or octal string
        (``None``: 0755 for an executable file on disk, else 0644).
    :param fmt: ``zip``, ``tgz`` or ``tar`` (CodeDeploy's bundle types).
    :param mtime: the timestamp of every entry (default ``SOURCE_DATE_EPOCH`` or 0).
    """
    if fmt not in FORMATS:
        raise BundleError('fmt must be one of %s, not %r' % (', '.join(FORMATS), fmt))
    stamp = effective_mtime(mtime)
    entries = bundle_entries(appspec_text, files)
    if fmt == 'zip':
        return _build_zip(entries, stamp)
    tar = tar_archive([TarMember(path, data, mode) for path, data, mode in entries], stamp)
    return gzip_bytes(tar, level=COMPRESS_LEVEL) if fmt == 'tgz' else tar


# --------------------------------------------------------------------------
# Reading and validating bundles
# --------------------------------------------------------------------------

@dataclass
class BundleContents:
    """An indexed bundle: its format, appspec text (None if missing) and files."""

    fmt: str
    appspec_text: Optional[str]
    files: Dict[str, Tuple[Optional[int], bytes]] = field(default_factory=dict)
    problems: List[Problem] = field(default_factory=list)


def _detect_format(data: bytes) -> Optional[str]:
    if data[:4] in (b'PK\x03\x04', b'PK\x05\x06'):
        return 'zip'
    if data[:2] == b'\x1f\x8b':
        return 'tgz'
    if data[257:262] == b'ustar':
        return 'tar'
    return None


def read_bundle(data: bytes, fmt: Optional[str] = None, head_bytes: int = HEAD_BYTES) -> BundleContents:
    """Index bundle bytes: ``files`` maps each path to ``(mode, first head_bytes bytes)``.

    ``mode`` includes the file type bits (``S_IFDIR`` for directories) or is
    None when the archive carries no Unix mode.  Problems (unreadable
    archive, no appspec.yml at the root) are returned, not raised.
    """
    fmt = fmt or _detect_format(data)
    contents = BundleContents(fmt=fmt or 'unknown', appspec_text=None)
    raw_appspec: Optional[bytes] = None
    try:
        if fmt == 'zip':
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    mode = info.external_attr >> 16 if info.create_system == 3 else None
                    if info.is_dir():
                        contents.files[info.filename.rstrip('/') + '/'] = (
                            (mode or 0) | stat.S_IFDIR, b'')
                        continue
                    with archive.open(info) as handle:
                        head = handle.read(head_bytes)
                    if mode is not None and not stat.S_IFMT(mode):
                        mode |= stat.S_IFREG
                    name = info.filename[2:] if info.filename.startswith('./') else info.filename
                    contents.files[name] = (mode, head)
                    if name == APPSPEC_NAME:
                        raw_appspec = archive.read(info)
        elif fmt in ('tgz', 'tar'):
            with tarfile.open(fileobj=io.BytesIO(data), mode='r:*') as archive:
                for member in archive.getmembers():
                    name = member.name[2:] if member.name.startswith('./') else member.name
                    if not name or name == '.':
                        continue
                    if member.isdir():
                        contents.files[name.rstrip('/') + '/'] = (stat.S_IFDIR | member.mode, b'')
                        continue
                    if not member.isfile():
                        contents.files[name] = (member.mode, b'')
                        continue
                    handle = archive.extractfile(member)
                    head = handle.read(head_bytes) if handle else b''
                    contents.files[name] = (stat.S_IFREG | member.mode, head)
                    if name == APPSPEC_NAME and handle is not None:
                        handle.seek(0)
                        raw_appspec = handle.read()
        else:
            contents.problems.append(Problem('', 'not a zip, tar or tgz bundle'))
            return contents
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, ValueError) as exc:
        contents.problems.append(Problem('', 'cannot read the %s bundle: %s' % (fmt, exc)))
        return contents
    if raw_appspec is None:
        nested = sorted(p for p in contents.files if posixpath.basename(p.rstrip('/')) in
                        (APPSPEC_NAME, 'appspec.yaml'))
        hint = ''
        if 'appspec.yaml' in nested:
            hint = ': appspec.yaml is only read with an explicit option; name it appspec.yml'
        elif nested:
            hint = ': found %s; bundle the contents of its directory, not the directory itself' % nested[0]
        contents.problems.append(Problem('', 'the bundle has no appspec.yml at its root' + hint))
    else:
        try:
            contents.appspec_text = raw_appspec.decode('utf-8')
        except UnicodeDecodeError as exc:
            contents.problems.append(Problem('', 'appspec.yml is not UTF-8 text (%s)' % exc))
    return contents


def validate_bundle(data: bytes, fmt: Optional[str] = None, os_family: Optional[str] = None) -> Result:
    """Validate bundle bytes as they would be uploaded: its appspec.yml against its files."""
    contents = read_bundle(data, fmt)
    if contents.appspec_text is None:
        return Result(problems=list(contents.problems), warnings=[], spec=None)
    result = validate(contents.appspec_text, bundle_files=contents.files, os_family=os_family)
    result.problems[:0] = contents.problems
    return result


# --------------------------------------------------------------------------
# appspec.yml from structured input
# --------------------------------------------------------------------------

_PLAIN_RE = re.compile(r'^[A-Za-z0-9_./][A-Za-z0-9_./@+-]*$')
_FILE_ORDER = ('source', 'destination')
_HOOK_ORDER = ('location', 'timeout', 'runas', 'sudo')


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if _PLAIN_RE.match(text):
        try:
            if yaml.safe_load(text) == text:
                return text
        except yaml.YAMLError:  # pragma: no cover - the regex keeps YAML syntax out
            pass
    return json.dumps(text, ensure_ascii=False)


def _ordered(entry: Mapping[str, Any], order: Sequence[str]) -> List[Tuple[str, Any]]:
    known = [(k, entry[k]) for k in order if entry.get(k) is not None]
    extra = sorted((str(k), v) for k, v in entry.items() if k not in order and v is not None)
    return known + extra


def _render_value(key: str, value: Any, indent: str) -> List[str]:
    if isinstance(value, (list, tuple)):
        if not value:
            return ['%s%s: []' % (indent, key)]
        lines = ['%s%s:' % (indent, key)]
        for item in value:
            if isinstance(item, Mapping):
                lines += _render_item(_ordered(item, sorted(map(str, item))), indent + '  ')
            else:
                lines.append('%s  - %s' % (indent, _scalar(item)))
        return lines
    if isinstance(value, Mapping):
        lines = ['%s%s:' % (indent, key)]
        for k, v in _ordered(value, sorted(map(str, value))):
            lines += _render_value(k, v, indent + '  ')
        return lines
    return ['%s%s: %s' % (indent, key, _scalar(value))]


def _render_item(pairs: List[Tuple[str, Any]], indent: str) -> List[str]:
    """A list item (mapping) at ``indent``: '- k: v' then '  k: v'."""
    if not pairs:
        return ['%s- {}' % indent]
    lines: List[str] = []
    for n, (key, value) in enumerate(pairs):
        rendered = _render_value(key, value, indent + '  ')
        if n == 0:
            rendered[0] = indent + '- ' + rendered[0][len(indent) + 2:]
        lines += rendered
    return lines


def _permission_mode(mode: Any) -> Any:
    if isinstance(mode, bool):
        return mode
    if isinstance(mode, int):
        # Like ansible.builtin.file: an int is the numeric mode (0o755 == 493 -> "755").
        return '%o' % mode if 0 <= mode <= 0o7777 else mode
    return mode


def appspec_from_structure(files: Optional[Sequence[Mapping[str, Any]]] = None,
                           permissions: Optional[Sequence[Mapping[str, Any]]] = None,
                           hooks: Optional[Mapping[str, Any]] = None,
                           file_exists_behavior: Optional[str] = None,
                           os_name: str = 'linux') -> str:
    """Render appspec.yml text from structured input, deterministically.

    ``files``: ``[{source, destination}]``; ``permissions``: ``[{object, owner,
    group, mode, type, pattern, except, acls, context}]`` (an int ``mode`` is a
    numeric mode, as in ``ansible.builtin.file``: ``0o755`` -> ``"755"``);
    ``hooks``: ``{event: [{location, timeout, runas}]}`` (an item may be just
    the location string).  Keys whose value is None are left out (unset module
    options).  Events come out in lifecycle order (unknown ones after, sorted),
    each entry's keys in a fixed order, so equal structures give equal text.
    ``version: 0.0`` is written as the YAML number the agent requires.  Nothing
    is validated here: run :func:`appspec.validate` on the result.  Raises
    ImportError when PyYAML cannot be imported (see ``HAS_YAML``).
    """
    require_yaml('rendering appspec.yml')
    lines = ['version: 0.0', 'os: %s' % _scalar(os_name)]
    if files:
        lines.append('files:')
        for entry in files:
            lines += _render_item(_ordered(entry, _FILE_ORDER), '  ')
    if permissions:
        lines.append('permissions:')
        for entry in permissions:
            entry = dict(entry)
            if 'mode' in entry and entry['mode'] is not None:
                entry['mode'] = _permission_mode(entry['mode'])
            lines += _render_item(_ordered(entry, PERMISSION_KEYS), '  ')
    if file_exists_behavior is not None:
        lines.append('file_exists_behavior: %s' % _scalar(file_exists_behavior))
    if hooks:
        lines.append('hooks:')
        order = {name: n for n, name in enumerate(HOOKABLE_EVENTS)}
        for event in sorted(hooks, key=lambda e: (order.get(e, len(order)), str(e))):
            scripts = hooks[event]
            if isinstance(scripts, (str, Mapping)):
                scripts = [scripts]
            if not scripts:
                lines.append('  %s: []' % _scalar(event))
                continue
            lines.append('  %s:' % _scalar(event))
            for script in scripts:
                if isinstance(script, str):
                    script = {'location': script}
                lines += _render_item(_ordered(script, _HOOK_ORDER), '    ')
    return '\n'.join(lines) + '\n'
