# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The .deb file format, written and read: control paragraphs and the ``ar`` container.

Writing (:func:`format_description`, :func:`render_control`, :func:`ar_archive`) produces the
bytes dpkg-deb would; a change here changes every package's checksum.  Reading
(:func:`parse_control`, :func:`read_control`) serves diff mode against an existing package.
Knows nothing of :class:`~debian_spec.PackageSpec`: it takes fields and members.
"""

from __future__ import annotations

import gzip
import io
import lzma
import tarfile
from typing import Dict, List, Optional, Tuple

from ansible_collections.goship.deploy.plugins.module_utils.debian_spec import ArchiveFormatError

__all__ = ['AR_MAGIC', 'format_description', 'render_control', 'parse_control', 'ar_archive', 'read_control']

AR_MAGIC = b'!<arch>\n'


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
    """The control paragraph: one ``Field: value`` line per field, in the order given."""
    return ''.join('%s: %s\n' % (k, v) for k, v in fields)


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
# ar container
# --------------------------------------------------------------------------

def ar_archive(members: List[Tuple[str, bytes]], mtime: int) -> bytes:
    """Return a System V / GNU ``ar`` archive as dpkg-deb writes it.

    Raises :class:`ArchiveFormatError` (a ValueError) for a member the fixed-width header
    cannot describe.
    """
    out = [AR_MAGIC]
    for name, data in members:
        header = '%-16s%-12d%-6d%-6d%-8s%-10d`\n' % (name, mtime, 0, 0, '100644', len(data))
        encoded = header.encode('ascii')
        if len(encoded) != 60:  # a member name or size too long for the fixed-width header
            raise ArchiveFormatError('ar header for %r is %d bytes, not 60: ar holds names of at most 16 characters, '
                                     'an mtime of at most 12 digits (%d here) and a size of at most 10 digits '
                                     '(%d bytes here)' % (name, len(encoded), mtime, len(data)))
        out.append(encoded)
        out.append(data)
        if len(data) % 2:
            out.append(b'\n')
    return b''.join(out)


def _ar_members(data: bytes) -> Dict[str, bytes]:
    if not data.startswith(AR_MAGIC):
        raise ArchiveFormatError('not an ar archive')
    members = {}
    pos = len(AR_MAGIC)
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        if header[58:60] != b'`\n':
            raise ArchiveFormatError('bad ar member header')
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
