# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build reproducible CodeDeploy revision bundles (zip, tgz or tar) for EC2/on-premises.

No Ansible or boto3 imports (standard library + PyYAML through ``appspec``);
``plugins/modules/codedeploy_revision.py`` is a thin wrapper around it.

Entry points
------------
* :func:`build_bundle` (``appspec_text, files, fmt, mtime``) -> bytes: appspec.yml
  at the root plus ``files`` (``(source, path_in_bundle, mode)``, where source is a
  path on disk or the content as bytes).
* :func:`appspec_from_structure` renders a deterministic appspec.yml from
  structured input (files, permissions, hooks, file_exists_behavior).
* :func:`go_service_layout` / :func:`go_service_bundle`: the standard bundle for a
  Go service (its .deb or binary + the default hook scripts below), from a few
  variables.  :func:`render_hook_script` renders one of :data:`HOOK_TEMPLATES`.
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

Default hook scripts
--------------------
``HOOK_TEMPLATES`` holds POSIX sh scripts (``#!/bin/sh`` + ``set -eu``, LF
endings, shipped with mode 0755), rendered with :class:`HookTemplate`
(``string.Template`` with ``@@name`` placeholders, so the shell's own ``$``
needs no escaping).  Every value is substituted shell-quoted into a variable
assignment at the top of the script, never into the body.

* ``stop`` (ApplicationStop): ``systemctl stop <svc>``, bounded by ``timeout``.
  CodeDeploy runs ApplicationStop from the PREVIOUSLY deployed revision, and a
  failing one blocks every later deployment to the group, so it always exits 0.
* ``migrate`` (AfterInstall, optional, before ``install``): applies
  ``migrations/*.sql`` with ``psql``, one transaction per file, recorded in a
  bookkeeping table (default ``goship_schema_migrations``).  CodeDeploy runs
  hooks on *every* instance (in parallel with HalfAtATime/AllAtOnce), so the
  whole run holds a PostgreSQL session advisory lock: the first instance applies
  the pending files, the others wait, then find nothing left to apply.
  Limitations: migrations must stay compatible with the previous release, which
  keeps serving on the other instances during a rolling deployment; a file that
  cannot run inside a transaction (CREATE INDEX CONCURRENTLY) is not supported;
  the connection settings come from an environment file on the instance
  (``PGHOST``, ``PGPORT``, ``PGDATABASE``, ``PGUSER``, ``PGPASSWORD`` ...,
  default ``/etc/<service>/migrate.env``, mode 0600), never from the bundle.
* ``install`` (AfterInstall, .deb bundles): ``apt-get install`` of the bundled
  .deb (``dpkg -i`` without apt), downgrades allowed so that redeploying an old
  revision rolls back.
* ``start`` (ApplicationStart): ``systemctl daemon-reload``, ``enable``,
  ``restart``; never backgrounds anything (a background child holding the
  hook's output fails the event after its timeout).
* ``validate`` (ValidateService): polls the health URL until it answers 200
  and the status URL reports the expected version (a JSON key, default
  ``version``, or the plain body), bounded by its own timeout; exits 1 with the
  last observation otherwise.  Needs ``curl`` (or ``wget``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import re
import shlex
import stat
import string
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
from ansible_collections.goship.deploy.plugins.module_utils.reproducible import (
    ReproducibleError,
    TarMember,
    gzip_bytes,
    parse_mode,
    path_sort_key,
    tar_archive,
)
from ansible_collections.goship.deploy.plugins.module_utils.version import version_problems
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
    'FORMATS', 'APPSPEC_NAME', 'HOOK_TEMPLATES', 'HookTemplate', 'BundleError', 'BuiltBundle',
    'BundleContents', 'build_bundle', 'bundle_entries', 'appspec_from_structure',
    'render_hook_script', 'go_service_layout', 'go_service_bundle', 'read_bundle',
    'validate_bundle', 'effective_mtime', 'DEFAULT_GO_TIMEOUTS',
    'HAS_YAML', 'YAML_IMPORT_ERROR',
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


class BundleError(ValueError):
    """Bad input for a bundle; ``problems`` lists every reason (one line each)."""

    def __init__(self, problems: Union[str, Sequence[Any]]):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = [str(p) for p in problems]
        super().__init__('; '.join(self.problems))


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


# --------------------------------------------------------------------------
# Default hook scripts for a Go service
# --------------------------------------------------------------------------

class HookTemplate(string.Template):
    """``string.Template`` with ``@@name`` placeholders (``$`` stays the shell's)."""

    delimiter = '@@'
    idpattern = r'[a-z][a-z0-9_]*'


_COMMON_HEAD = '''\
#!/bin/sh
# %(event)s hook generated by goship.deploy (plugins/module_utils/codedeploy_bundle.py).
'''

STOP_SH = _COMMON_HEAD % {'event': 'ApplicationStop'} + '''\
#
# CodeDeploy runs ApplicationStop from the PREVIOUSLY deployed revision (with the new
# deployment's DEPLOYMENT_ID): this copy runs at the NEXT deployment. A failing ApplicationStop
# blocks every later deployment to the group, so this script stops the service if it can and
# always exits 0.
set -eu

SERVICE=@@service
STOP_TIMEOUT=@@stop_timeout

unit="$SERVICE.service"
log() { printf 'stop: %s\\n' "$*"; }

if ! command -v systemctl >/dev/null 2>&1; then
    log "systemctl not found; nothing to stop"
    exit 0
fi
if ! systemctl cat "$unit" >/dev/null 2>&1; then
    log "$unit is not installed; nothing to stop"
    exit 0
fi
if command -v timeout >/dev/null 2>&1; then
    set -- timeout "$STOP_TIMEOUT" systemctl stop "$unit"
else
    set -- systemctl stop "$unit"
fi
if "$@"; then
    log "stopped $unit"
else
    log "could not stop $unit (exit $?); continuing so that the deployment is not blocked" >&2
fi
exit 0
'''

INSTALL_SH = _COMMON_HEAD % {'event': 'AfterInstall'} + '''\
#
# Installs the service's .deb from this bundle. Downgrades are allowed so that redeploying an
# older revision rolls back. Existing configuration files are kept (--force-confold).
set -eu

SERVICE=@@service
PACKAGE=@@package
LOCK_TIMEOUT=@@lock_timeout

log() { printf 'install: %s\\n' "$*"; }
bundle=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
deb="$bundle/$PACKAGE"

if [ ! -f "$deb" ]; then
    log "$deb is missing from the bundle" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if command -v apt-get >/dev/null 2>&1; then
    log "apt-get install $deb"
    apt-get install -y -q --allow-downgrades \\
        -o DPkg::Lock::Timeout="$LOCK_TIMEOUT" \\
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \\
        "$deb"
else
    log "dpkg -i $deb"
    dpkg --force-confdef --force-confold -i "$deb"
fi
log "installed $(dpkg-query -W -f='${Package} ${Version}' "$SERVICE" 2>/dev/null || echo "$SERVICE")"
'''

MIGRATE_SH = _COMMON_HEAD % {'event': 'AfterInstall (and go_service migration)'} + '''\
#
# Applies the service's SQL migrations once for the whole deployment. CodeDeploy runs every hook
# on every instance, so the run holds a PostgreSQL advisory lock: the first instance applies the
# pending files (one transaction each, recorded in $TABLE), the others wait for the lock and then
# find nothing left to apply. Connection settings (PGHOST, PGPORT, PGDATABASE, PGUSER,
# PGPASSWORD, ...) come from $ENV_FILE on the instance, never from the bundle.
set -eu

SERVICE=@@service
MIGRATIONS_DIR=@@migrations_dir
ENV_FILE=@@pg_env_file
TABLE=@@migrations_table
LOCK_KEY=@@lock_key
LOCK_WAIT=@@lock_wait

log() { printf 'migrate: %s\\n' "$*"; }
fail() { printf 'migrate: %s\\n' "$*" >&2; exit 1; }
bundle=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
case "$MIGRATIONS_DIR" in
    /*) dir=$MIGRATIONS_DIR ;;
    *) dir="$bundle/$MIGRATIONS_DIR" ;;
esac

[ -d "$dir" ] || fail "migrations directory $dir not found"
command -v psql >/dev/null 2>&1 || fail "psql not found: install postgresql-client"
[ -r "$ENV_FILE" ] || fail "$ENV_FILE not found or not readable: it must hold PGHOST, PGPORT, PGDATABASE, PGUSER and PGPASSWORD (mode 0600)"
set -a
. "$ENV_FILE"
set +a

dry_run=0
[ "${1:-}" = --dry-run ] && dry_run=1
if [ "$dry_run" = 1 ]; then
    PGOPTIONS="${PGOPTIONS:-} -c default_transaction_read_only=on"
    export PGOPTIONS
fi

plan=$(mktemp)
trap 'rm -f "$plan"' EXIT
trap 'exit 1' HUP INT TERM
count=0
{
    if [ "$dry_run" = 1 ]; then
        printf '%s\\n' "SELECT to_regclass('$TABLE') IS NOT NULL AS goship_has_table \\gset"
    else
        printf '%s\\n' "SET lock_timeout = '${LOCK_WAIT}s';"
        printf '%s\\n' "SELECT pg_advisory_lock($LOCK_KEY);"
        printf '%s\\n' "SET lock_timeout = 0;"
        printf '%s\\n' "SET client_min_messages = warning;"
        printf '%s\\n' "CREATE TABLE IF NOT EXISTS $TABLE (filename text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());"
        printf '%s\\n' "RESET client_min_messages;"
    fi
    for file in "$dir"/*.sql; do
        [ -f "$file" ] || continue
        name=${file##*/}
        case "$name" in
            *[!A-Za-z0-9._-]*) fail "unsafe migration file name: $name" ;;
        esac
        case "$file" in
            *"'"*|*'\\'*) fail "unsafe migration path: $file" ;;
        esac
        count=$((count + 1))
        if [ "$dry_run" = 1 ]; then
            cat <<EOF
\\\\if :goship_has_table
SELECT NOT EXISTS (SELECT 1 FROM $TABLE WHERE filename = '$name') AS goship_pending \\\\gset
\\\\else
\\\\set goship_pending true
\\\\endif
\\\\if :goship_pending
\\\\echo migrate: pending $name
\\\\else
\\\\echo migrate: $name already applied
\\\\endif
EOF
            continue
        fi
        cat <<EOF
SELECT NOT EXISTS (SELECT 1 FROM $TABLE WHERE filename = '$name') AS goship_pending \\\\gset
\\\\if :goship_pending
\\\\echo migrate: applying $name
BEGIN;
\\\\i '$file'
INSERT INTO $TABLE (filename) VALUES ('$name');
COMMIT;
\\\\else
\\\\echo migrate: $name already applied
\\\\endif
EOF
    done
    [ "$dry_run" = 1 ] || printf '%s\\n' "SELECT pg_advisory_unlock($LOCK_KEY);"
} >"$plan"

if [ "$count" -eq 0 ]; then
    log "no migrations in $dir"
    exit 0
fi
if [ "$dry_run" = 1 ]; then
    log "$count migration file(s) in $dir; dry run: nothing is applied"
else
    log "$count migration file(s) in $dir; waiting up to ${LOCK_WAIT}s for the migration lock"
fi
# Query results go to /dev/null; \\echo progress lines and errors still show.
if ! psql -X -q -v ON_ERROR_STOP=1 -o /dev/null -f "$plan"; then
    [ "$dry_run" = 1 ] && fail "could not list the pending migrations (see above)"
    fail "a migration failed (see above); it was rolled back and nothing after it was applied"
fi
log "done"
'''

START_SH = _COMMON_HEAD % {'event': 'ApplicationStart'} + '''\
#
# Starts the service through systemd. Nothing is started in the background: a child left holding
# the hook's stdout/stderr would fail the event after its timeout.
set -eu

SERVICE=@@service

unit="$SERVICE.service"
log() { printf 'start: %s\\n' "$*"; }

systemctl daemon-reload
if ! systemctl enable --quiet "$unit"; then
    log "could not enable $unit: it will not start at boot" >&2
fi
log "restarting $unit"
if ! systemctl restart "$unit"; then
    systemctl status --no-pager --lines=20 "$unit" >&2 || true
    exit 1
fi
if ! systemctl is-active --quiet "$unit"; then
    log "$unit is not active after restart" >&2
    systemctl status --no-pager --lines=20 "$unit" >&2 || true
    exit 1
fi
log "$unit is active"
'''

VALIDATE_SH = _COMMON_HEAD % {'event': 'ValidateService'} + '''\
#
# Polls the health URL until it answers 200 and the status URL reports the expected version,
# for at most TIMEOUT seconds; exits 1 with the last observation otherwise.
set -eu

SERVICE=@@service
HEALTH_URL=@@health_url
STATUS_URL=@@status_url
VERSION_KEY=@@version_key
EXPECTED_VERSION=@@expected_version
TIMEOUT=@@timeout
INTERVAL=@@interval

log() { printf 'validate: %s\\n' "$*"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM

# fetch URL FILE: prints the HTTP status code ("000" when there is no answer).
fetch() {
    if command -v curl >/dev/null 2>&1; then
        curl -sS -o "$2" -w '%{http_code}' --connect-timeout 2 --max-time 5 \\
            --noproxy '127.0.0.1,localhost,::1' "$1" 2>/dev/null || true
    elif command -v wget >/dev/null 2>&1; then
        if wget -q -T 5 -t 1 -O "$2" "$1" 2>/dev/null; then echo 200; else echo 000; fi
    else
        echo 000
    fi
}

# reported_version FILE: the version in a status answer (a JSON key, or the plain body).
reported_version() {
    if [ -z "$VERSION_KEY" ]; then
        tr -d '\\r\\n' <"$1" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//'
    else
        tr -d '\\r\\n' <"$1" | sed -n \\
            -e "s/.*\\"$VERSION_KEY\\"[[:space:]]*:[[:space:]]*\\"\\([^\\"]*\\)\\".*/\\1/p" \\
            -e "t" \\
            -e "s/.*\\"$VERSION_KEY\\"[[:space:]]*:[[:space:]]*\\([-+.0-9eE]*\\).*/\\1/p"
    fi
}

if ! command -v curl >/dev/null 2>&1 && ! command -v wget >/dev/null 2>&1; then
    log "neither curl nor wget is installed" >&2
    exit 1
fi
start=$(date +%s)
deadline=$((start + TIMEOUT))
max_attempts=$((TIMEOUT / INTERVAL + 2))
attempt=0
last="no answer yet"
while [ "$attempt" -lt "$max_attempts" ]; do
    attempt=$((attempt + 1))
    code=$(fetch "$HEALTH_URL" "$work/health")
    if [ "$code" = 200 ]; then
        code=$(fetch "$STATUS_URL" "$work/status")
        if [ "$code" = 200 ]; then
            version=$(reported_version "$work/status")
            if [ "$version" = "$EXPECTED_VERSION" ]; then
                log "$SERVICE is healthy and reports version $version (attempt $attempt)"
                exit 0
            fi
            last="$STATUS_URL reports version '$version', expected '$EXPECTED_VERSION'"
        else
            last="$HEALTH_URL answered 200 but $STATUS_URL answered $code"
        fi
    else
        last="$HEALTH_URL answered $code"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        break
    fi
    sleep "$INTERVAL"
done
log "$SERVICE failed validation after $attempt attempt(s) in ${TIMEOUT}s: $last" >&2
exit 1
'''

#: name -> template text; see :func:`render_hook_script` for each one's parameters.
HOOK_TEMPLATES = {
    'stop': STOP_SH,
    'install': INSTALL_SH,
    'migrate': MIGRATE_SH,
    'start': START_SH,
    'validate': VALIDATE_SH,
}


def render_hook_script(name: str, **params: Any) -> str:
    """Render ``HOOK_TEMPLATES[name]``; every value is shell-quoted into an assignment.

    Parameters: ``stop``: service, stop_timeout; ``install``: service, package
    (path in the bundle), lock_timeout; ``migrate``: service, migrations_dir
    (relative: inside the bundle), pg_env_file, migrations_table, lock_key,
    lock_wait; ``start``: service; ``validate``: service, health_url,
    status_url, version_key ('' = plain body), expected_version, timeout,
    interval.  Raises :class:`BundleError` for an unknown script or a missing
    parameter.
    """
    if name not in HOOK_TEMPLATES:
        raise BundleError('unknown hook script %r (known: %s)' % (name, ', '.join(sorted(HOOK_TEMPLATES))))
    quoted = {key: shlex.quote(str(value)) for key, value in params.items()}
    try:
        return HookTemplate(HOOK_TEMPLATES[name]).substitute(quoted)
    except KeyError as exc:
        raise BundleError('hook script %r needs the parameter %s' % (name, exc.args[0]))


# --------------------------------------------------------------------------
# The standard Go service bundle
# --------------------------------------------------------------------------

#: hook -> timeout in seconds (the appspec timeouts of the default scripts).
DEFAULT_GO_TIMEOUTS = {'stop': 120, 'migrate': 900, 'install': 600, 'start': 120, 'validate': 150}

_SERVICE_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.@-]{0,199}$')
_URL_RE = re.compile(r'^https?://[^\s\'"\\]+$')
_KEY_RE = re.compile(r'^[A-Za-z0-9_-]*$')
_TABLE_RE = re.compile(r'^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$')


def _migration_setting_problems(migrations_table: Any, env_file: Any) -> List[str]:
    """Problems with the bookkeeping table name and the connection settings file path."""
    problems = []
    if not isinstance(migrations_table, str) or not _TABLE_RE.match(migrations_table):
        problems.append('migrations_table %r must be a lowercase SQL identifier (optionally '
                        'schema-qualified)' % (migrations_table,))
    if not isinstance(env_file, str) or not env_file.startswith('/'):
        problems.append('pg_env_file %r must be an absolute path on the instance' % (env_file,))
    return problems


def migrate_script(service: str, migrations_dir: str, pg_env_file: Optional[str] = None,
                   migrations_table: str = 'goship_schema_migrations', lock_wait: int = 840) -> str:
    """The migration runner for ``service`` (the ``migrate`` hook script), arguments checked.

    ``migrations_dir`` is absolute on the host, or relative to the bundle root when the script
    runs from a CodeDeploy bundle.  The advisory lock key is derived from ``service``, so every
    runner of one service (role or CodeDeploy hook) serialises on the same lock.  Raises
    :class:`BundleError` listing every bad argument.
    """
    problems = []
    if not isinstance(service, str) or not _SERVICE_RE.match(service):
        problems.append('service %r must be letters, digits, . _ @ and - (a systemd unit name without suffix)'
                        % (service,))
    if not isinstance(migrations_dir, str) or not migrations_dir or re.search(r'[\s\'"\\]', migrations_dir):
        problems.append('migrations_dir %r must be a path without spaces or quotes' % (migrations_dir,))
    env_file = pg_env_file or '/etc/%s/migrate.env' % service
    problems += _migration_setting_problems(migrations_table, env_file)
    if isinstance(lock_wait, bool) or not isinstance(lock_wait, int) or not 1 <= lock_wait <= 3600:
        problems.append('lock_wait must be a whole number of seconds from 1 to 3600, not %r' % (lock_wait,))
    if problems:
        raise BundleError(problems)
    return render_hook_script('migrate', service=service, migrations_dir=migrations_dir, pg_env_file=env_file,
                              migrations_table=migrations_table, lock_key=_lock_key(service),
                              lock_wait=lock_wait)


@dataclass
class BuiltBundle:
    """A built bundle: its bytes, format, appspec text, entries and validation warnings."""

    data: bytes
    fmt: str
    appspec: str
    entries: List[str]
    warnings: List[Problem] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _status_url(health_url: str, status_path: str = '/status') -> str:
    match = re.match(r'^(https?://[^/?#]+)', health_url)
    return (match.group(1) if match else health_url.rstrip('/')) + status_path


def _lock_key(service: str) -> int:
    digest = hashlib.sha256(('goship.deploy:migrate:' + service).encode('utf-8')).digest()
    return int.from_bytes(digest[:8], 'big', signed=True)


def go_service_layout(service: str, version: str, artifact: Union[str, 'os.PathLike[str]'],
                      health_url: str, status_url: Optional[str] = None,
                      version_key: str = 'version', migrations_dir: Optional[str] = None,
                      pg_env_file: Optional[str] = None,
                      migrations_table: str = 'goship_schema_migrations',
                      binary_dir: str = '/usr/local/bin', unit_file: Optional[str] = None,
                      validate_timeout: int = 120, validate_interval: int = 2,
                      timeouts: Optional[Mapping[str, int]] = None,
                      ) -> Tuple[str, List[FileSpec]]:
    """The standard bundle of a Go service as ``(appspec_text, files)`` for :func:`build_bundle`.

    :param artifact: the service's ``.deb`` (installed by ``scripts/install.sh``
        in AfterInstall) or its binary (copied by the ``files`` section to
        ``binary_dir/<service>`` with mode 0755; ``unit_file``, if given, goes to
        /etc/systemd/system).
    :param health_url: polled by ``scripts/validate.sh`` until it answers 200.
    :param status_url: must report ``version`` (default: ``/status`` on the
        health URL's host); ``version_key`` is the JSON key holding it, ''
        for a plain-text body.
    :param migrations_dir: a local directory whose ``*.sql`` files are shipped
        under ``migrations/`` and applied once per deployment by
        ``scripts/migrate.sh`` (AfterInstall, before the install); connection
        settings come from ``pg_env_file`` on the instance
        (default ``/etc/<service>/migrate.env``).
    :param timeouts: overrides of :data:`DEFAULT_GO_TIMEOUTS` (appspec
        timeouts; ``validate`` defaults to ``validate_timeout + 30``).

    Hooks: ApplicationStop ``stop.sh``; AfterInstall ``migrate.sh`` (optional)
    then ``install.sh`` (.deb only); ApplicationStart ``start.sh``;
    ValidateService ``validate.sh``.  Raises :class:`BundleError` listing every
    bad parameter.
    """
    problems: List[str] = []
    if not isinstance(service, str) or not _SERVICE_RE.match(service):
        problems.append('service %r must be a systemd unit name (letters, digits, _ . @ -)' % (service,))
    problems += version_problems(version)
    urls = {'health_url': health_url,
            'status_url': status_url if status_url else _status_url(str(health_url))}
    for key, url in urls.items():
        if not isinstance(url, str) or not _URL_RE.match(url):
            problems.append('%s %r must be an http:// or https:// URL without spaces or quotes' % (key, url))
    if not isinstance(version_key, str) or not _KEY_RE.match(version_key):
        problems.append('version_key %r must be a JSON key of letters, digits, _ and - (or "" for a '
                        'plain-text body)' % (version_key,))
    env_file = pg_env_file or '/etc/%s/migrate.env' % service
    problems += _migration_setting_problems(migrations_table, env_file)
    if not isinstance(binary_dir, str) or not binary_dir.startswith('/'):
        problems.append('binary_dir %r must be an absolute path on the instance' % (binary_dir,))
    merged = dict(DEFAULT_GO_TIMEOUTS)
    merged['validate'] = (validate_timeout + 30) if isinstance(validate_timeout, int) else 0
    for key, value in (timeouts or {}).items():
        if key not in merged:
            problems.append('unknown timeouts key %r (known: %s)' % (key, ', '.join(sorted(merged))))
        merged[key] = value
    for key, value in sorted(merged.items()):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3600:
            problems.append('timeouts.%s must be a whole number of seconds from 1 to 3600, not %r'
                            % (key, value))
    for key, value in (('validate_timeout', validate_timeout), ('validate_interval', validate_interval)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3600:
            problems.append('%s must be a whole number of seconds from 1 to 3600, not %r' % (key, value))
    artifact_path = os.fspath(artifact) if artifact is not None else ''
    if not artifact_path or not os.path.isfile(artifact_path):
        problems.append('artifact %r is not a file' % (artifact_path,))
    if unit_file is not None:
        if artifact_path.endswith('.deb'):
            problems.append('unit_file is for a binary artifact; a .deb carries its own systemd unit')
        elif not os.path.isfile(unit_file):
            problems.append('unit_file %r is not a file' % (unit_file,))
    sql_files: List[str] = []
    if migrations_dir is not None:
        if not os.path.isdir(migrations_dir):
            problems.append('migrations_dir %r is not a directory' % (migrations_dir,))
        else:
            sql_files = sorted(n for n in os.listdir(migrations_dir) if n.endswith('.sql')
                               and os.path.isfile(os.path.join(migrations_dir, n)))
            bad = [n for n in sql_files if not re.match(r'^[A-Za-z0-9._-]+$', n)]
            if bad:
                problems.append('migration file names may hold only letters, digits, . _ and -: %s'
                                % ', '.join(bad))
            if not sql_files:
                problems.append('migrations_dir %r has no *.sql files' % (migrations_dir,))
    if problems:
        raise BundleError(problems)

    is_deb = artifact_path.endswith('.deb')
    files: List[FileSpec] = []
    appspec_files: List[Dict[str, Any]] = []
    permissions: List[Dict[str, Any]] = []
    hooks: Dict[str, List[Dict[str, Any]]] = {}

    def script(name: str, **params: Any) -> str:
        path = 'scripts/%s.sh' % name
        text = render_hook_script(name, service=service, **params)
        files.append((text.encode('utf-8'), path, SCRIPT_MODE))
        return path

    hooks['ApplicationStop'] = [{'location': script('stop', stop_timeout=max(merged['stop'] - 10, 1)),
                                 'timeout': merged['stop']}]
    after_install: List[Dict[str, Any]] = []
    if sql_files:
        for name in sql_files:
            files.append((os.path.join(migrations_dir, name), 'migrations/' + name, FILE_MODE))
        text = migrate_script(service, 'migrations', pg_env_file=env_file, migrations_table=migrations_table,
                              lock_wait=max(merged['migrate'] - 60, 1))
        files.append((text.encode('utf-8'), 'scripts/migrate.sh', SCRIPT_MODE))
        after_install.append({'location': 'scripts/migrate.sh', 'timeout': merged['migrate']})
    if is_deb:
        package = 'pkg/' + os.path.basename(artifact_path)
        files.append((artifact_path, package, FILE_MODE))
        after_install.append({
            'location': script('install', package=package, lock_timeout=max(merged['install'] // 2, 1)),
            'timeout': merged['install']})
    else:
        files.append((artifact_path, 'bin/' + service, SCRIPT_MODE))
        appspec_files.append({'source': 'bin/' + service, 'destination': binary_dir})
        permissions.append({'object': posixpath.join(binary_dir, service), 'mode': '755',
                            'owner': 'root', 'group': 'root', 'type': ['file']})
        if unit_file is not None:
            files.append((unit_file, 'systemd/%s.service' % service, FILE_MODE))
            appspec_files.append({'source': 'systemd/%s.service' % service,
                                  'destination': '/etc/systemd/system'})
    if after_install:
        hooks['AfterInstall'] = after_install
    hooks['ApplicationStart'] = [{'location': script('start'), 'timeout': merged['start']}]
    hooks['ValidateService'] = [{
        'location': script('validate', health_url=urls['health_url'], status_url=urls['status_url'],
                           version_key=version_key, expected_version=version,
                           timeout=validate_timeout, interval=validate_interval),
        'timeout': merged['validate']}]
    appspec_text = appspec_from_structure(
        files=appspec_files, permissions=permissions, hooks=hooks,
        file_exists_behavior='OVERWRITE' if appspec_files else None)
    return appspec_text, files


def go_service_bundle(service: str, version: str, artifact: Union[str, 'os.PathLike[str]'],
                      health_url: str, fmt: str = 'zip', mtime: Optional[int] = None,
                      **options: Any) -> BuiltBundle:
    """Build and validate the standard Go service bundle (see :func:`go_service_layout`).

    Raises :class:`BundleError` if the result does not pass :func:`validate_bundle`
    (it always should); its warnings (ApplicationStop runs the previous
    revision's script) are returned on the :class:`BuiltBundle`.
    """
    appspec_text, files = go_service_layout(service, version, artifact, health_url, **options)
    data = build_bundle(appspec_text, files, fmt=fmt, mtime=mtime)
    result = validate_bundle(data, fmt=fmt, os_family='linux')
    if result.problems:
        raise BundleError(result.problems)
    entries = [entry[0] for entry in bundle_entries(appspec_text, files)]
    return BuiltBundle(data=data, fmt=fmt, appspec=appspec_text, entries=entries, warnings=result.warnings)
