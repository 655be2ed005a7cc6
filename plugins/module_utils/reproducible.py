# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one reproducible-archive path: same inputs, same bytes, for every artifact goship.deploy builds.

Hosts and S3 compare artifacts by checksum, so a byte that moves without its input moving is a
spurious redeploy.  ``debian_package`` (.deb) and ``codedeploy_bundle`` (tar/tgz bundles) build
their archives from these pieces: the timestamp rule, mode parsing, GNU tar members and gzip.
Pure standard library, no Ansible imports.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import struct
import tarfile
import zlib
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Tuple, Union

from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError

__all__ = ['ReproducibleError', 'TarMember', 'effective_mtime', 'parse_mode', 'path_sort_key',
           'tar_archive', 'gzip_bytes', 'gzip_adaptive']

_MODE_RE = re.compile(r'^(?:0o|0)?[0-7]{1,4}$')
# ASCII digits only: str.isdigit() also accepts '²', which int() then rejects.
_EPOCH_RE = re.compile(r'^[0-9]+$')


class ReproducibleError(GoshipError, ValueError):
    """A bad timestamp or mode for an archive entry.

    Also a ``ValueError``: ``debian_package.parse_mode``/``effective_mtime`` always raised
    ValueError, and callers that catch it keep working.
    """


def effective_mtime(mtime: Optional[int] = None, environ: Optional[Mapping[str, str]] = None) -> int:
    """The timestamp of every entry: ``mtime`` if given, else ``SOURCE_DATE_EPOCH``, else 0.

    ``SOURCE_DATE_EPOCH`` follows the stricter of the two rules this replaces, codedeploy_bundle's
    (debian_package took whatever ``int()`` takes: ``'+5'``, ``'1_000'``): unset, empty or blank
    means unset; otherwise, surrounding whitespace stripped, it must be ASCII digits as
    ``date +%s`` prints them (reproducible-builds.org), else it is an error, never a silent 0.
    Raises :class:`ReproducibleError`.
    """
    if mtime is not None:
        if isinstance(mtime, bool) or not isinstance(mtime, int):
            raise ReproducibleError('mtime must be a whole number of seconds since the epoch, not %r' % (mtime,))
        if mtime < 0:
            raise ReproducibleError('mtime must be a whole number of seconds since the epoch, not %r '
                                    '(mtime must not be negative)' % (mtime,))
        return mtime
    environ = os.environ if environ is None else environ
    raw = environ.get('SOURCE_DATE_EPOCH') or ''
    if not raw.strip():
        return 0
    if not _EPOCH_RE.match(raw.strip()):
        raise ReproducibleError('SOURCE_DATE_EPOCH must be a whole number of seconds since the epoch '
                                '(digits only, as date +%%s prints it), not %r' % (raw,))
    return int(raw.strip())


def _bad_mode(mode: object) -> ReproducibleError:
    shown = oct(mode) if isinstance(mode, int) and not isinstance(mode, bool) else repr(mode)
    return ReproducibleError("mode must be octal digits such as '0644' or '0755' (at most 07777), not %s" % shown)


def parse_mode(mode: Union[str, int, None], default: int) -> int:
    """Octal string (``'0644'``, ``'755'``, ``'0o644'``) or int (the numeric mode) -> int.

    ``None`` or ``''`` gives ``default``.  Raises :class:`ReproducibleError`.
    """
    if mode is None or mode == '':
        return default
    if isinstance(mode, int) and not isinstance(mode, bool):
        value = mode
    elif isinstance(mode, str) and _MODE_RE.match(mode.strip()):
        text = mode.strip()
        value = int(text[2:] if text.startswith('0o') else text, 8)
    else:
        raise _bad_mode(mode)
    if not 0 <= value <= 0o7777:
        raise _bad_mode(mode)
    return value


def path_sort_key(path: str) -> Tuple[str, ...]:
    """Archive order: by path components, so a directory comes right before its contents.

    Leading ``/`` or ``./`` and a trailing ``/`` do not count (``'./usr/'`` sorts as ``'/usr'``).
    """
    return tuple(part for part in path.split('/') if part not in ('', '.'))


@dataclass(frozen=True)
class TarMember:
    """One tar entry: a directory when ``data`` is None, else a regular file holding ``data``.

    ``owner``/``group`` are names; a numeric one is written as the id with no name (see
    :func:`_owner_id`).
    """
    name: str
    data: Optional[bytes]
    mode: int
    owner: str = 'root'
    group: str = 'root'


def _owner_id(name: str) -> int:
    # dpkg resolves owners by *name* on the target system and falls back to the numeric id;
    # numeric names are used as ids, everything else maps to 0 (root).  isdecimal, not
    # isdigit: int() rejects '²'.
    return int(name) if name.isdecimal() else 0


def tar_archive(members: Iterable[TarMember], mtime: int) -> bytes:
    """A GNU-format tar of ``members`` in :func:`path_sort_key` order, every timestamp ``mtime``.

    GNU, not the pax default: no pax headers, so no atime/ctime or other host detail.  Ids
    are 0 unless an owner/group is numeric.
    """
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.GNU_FORMAT) as tar:
        for member in sorted(members, key=lambda m: path_sort_key(m.name)):
            info = tarfile.TarInfo(member.name)
            info.type = tarfile.DIRTYPE if member.data is None else tarfile.REGTYPE
            info.mode = member.mode
            info.size = 0 if member.data is None else len(member.data)
            info.mtime = mtime
            info.uid = _owner_id(member.owner)
            info.gid = _owner_id(member.group)
            info.uname = '' if member.owner.isdecimal() else member.owner
            info.gname = '' if member.group.isdecimal() else member.group
            tar.addfile(info, None if member.data is None else io.BytesIO(member.data))
    return raw.getvalue()


#: Blocks of the adaptive gzip stream, and the share of a block its probe must save for the block
#: to be compressed; both shape the bytes, so they are constants, not options.
ADAPTIVE_BLOCK = 1024 * 1024
_PROBE_SIZE = 64 * 1024
_PROBE_MIN_SAVING = 0.03


def gzip_adaptive(data: bytes, *, level: int) -> bytes:
    """A gzip stream of ``data`` (mtime 0, no file name) that spends no time on bytes that do not
    compress: each 1 MiB block whose first 64 KiB saves less than 3% at level 1 is stored, the
    others are compressed at ``level``. One deflate stream (each block but the last ends with a
    full flush), one CRC: any gzip reader reads it. The same ``data`` and ``level`` always give
    the same bytes, on the same zlib.
    """
    header = b'\x1f\x8b\x08\x00' + b'\x00\x00\x00\x00' + bytes([2 if level == 9 else 4 if level == 1 else 0, 255])
    parts = [header]
    view = memoryview(data)
    blocks = range(0, len(data), ADAPTIVE_BLOCK) if data else [0]
    for start in blocks:
        block = view[start:start + ADAPTIVE_BLOCK]
        probe = block[:_PROBE_SIZE]
        stored = len(probe) > 0 and len(zlib.compress(probe, 1)) > len(probe) * (1 - _PROBE_MIN_SAVING)
        deflate = zlib.compressobj(0 if stored else level, zlib.DEFLATED, -zlib.MAX_WBITS)
        parts.append(deflate.compress(block))
        last = start + ADAPTIVE_BLOCK >= len(data)
        parts.append(deflate.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH))
    parts.append(struct.pack('<II', zlib.crc32(data) & 0xffffffff, len(data) & 0xffffffff))
    return b''.join(parts)


def gzip_bytes(data: bytes, *, level: int) -> bytes:
    """A gzip stream of ``data`` with mtime 0 and no file name in its header.

    ``level`` has no default on purpose: another level gives other bytes, so each artifact
    keeps the level it has always had (the .deb 9, CodeDeploy bundles 6).
    """
    out = io.BytesIO()
    with gzip.GzipFile(filename='', mode='wb', fileobj=out, mtime=0, compresslevel=level) as gz:
        gz.write(data)
    return out.getvalue()
