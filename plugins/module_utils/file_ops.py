# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local file helpers shared by goship.deploy modules.

Pure standard library, no Ansible imports, so they are unit-testable and usable on any
target host:

* :func:`sha256_file` / :func:`hash_file` hash a file in bounded chunks (no full read
  into memory).
* :func:`write_atomic` writes bytes to a temporary file beside the destination, fsyncs it,
  sets its mode and renames it over the destination; the same semantics as
  ``deb_build``'s ``_write_atomic`` (temp prefix ``.<name>.``, suffix ``.tmp``).
* :class:`AtomicFile` is the streaming variant: open a temporary file beside ``dest``,
  write to it (or ``os.pwrite`` at offsets through :attr:`AtomicFile.fd`), then
  :meth:`~AtomicFile.commit` (fsync + rename) or :meth:`~AtomicFile.discard` (unlink).
  Leaving the ``with`` block without committing discards it, so ``dest`` is only ever
  replaced by a complete, checked file.
* :func:`write_if_changed` writes only when the bytes differ (``deb_build`` and
  ``codedeploy_revision``'s ``bundle_path``), so an unchanged artifact keeps its inode and mtime.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile

CHUNK_SIZE = 1024 * 1024


def hash_file(path, chunk_size=CHUNK_SIZE, algorithm='sha256'):
    """Return ``(hexdigest, size)`` of the file at ``path``, read in ``chunk_size`` chunks."""
    digest = hashlib.new(algorithm)
    size = 0
    with open(path, 'rb', buffering=0) as handle:
        buf = bytearray(chunk_size)
        view = memoryview(buf)
        while True:
            count = handle.readinto(buf)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return digest.hexdigest(), size


def sha256_file(path, chunk_size=CHUNK_SIZE):
    """Hex SHA-256 of the file at ``path``."""
    return hash_file(path, chunk_size)[0]


def hash_fd_range(fd, start, end, digest, chunk_size=CHUNK_SIZE):
    """Feed bytes ``[start, end)`` of the open file descriptor ``fd`` into ``digest``.

    Uses ``os.pread`` so the file position is not touched (safe while other threads
    ``pwrite`` elsewhere in the file).  Raises ``EOFError`` if the file is shorter.
    """
    pos = start
    while pos < end:
        data = os.pread(fd, min(chunk_size, end - pos), pos)
        if not data:
            raise EOFError('file ended at byte %d, expected %d bytes' % (pos, end))
        digest.update(data)
        pos += len(data)


def pread_exact(fd, size, offset):
    """Read exactly ``size`` bytes at ``offset`` (``os.pread`` may return less)."""
    parts = []
    remaining = size
    pos = offset
    while remaining > 0:
        data = os.pread(fd, remaining, pos)
        if not data:
            raise EOFError('file ended at byte %d, expected %d more bytes' % (pos, remaining))
        parts.append(data)
        remaining -= len(data)
        pos += len(data)
    return parts[0] if len(parts) == 1 else b''.join(parts)


def pwrite_all(fd, data, offset):
    """Write all of ``data`` at ``offset`` (``os.pwrite`` may write less)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def default_file_mode():
    """Mode a newly created regular file gets under the current umask (``0666 & ~umask``)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_directory(path):
    """fsync a directory so a rename in it is durable; errors are ignored (not all FS allow it)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicFile(object):
    """A temporary file beside ``dest`` that replaces ``dest`` only on :meth:`commit`.

    ``mode``: permissions given to the file before the rename.  When ``None``, an existing
    ``dest`` keeps its mode (and, when running as root, its owner and group); a new file
    gets :func:`default_file_mode`.
    """

    def __init__(self, dest, mode=None, suffix='.tmp'):
        self.dest = dest
        self.mode = mode
        directory = os.path.dirname(dest) or '.'
        self.fd, self.path = tempfile.mkstemp(
            prefix='.%s.' % os.path.basename(dest), suffix=suffix, dir=directory)
        self._done = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self._done:
            self.discard()
        return False

    def write(self, data):
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def _close(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            finally:
                self.fd = None

    def discard(self):
        """Close and remove the temporary file; ``dest`` is untouched."""
        self._done = True
        try:
            self._close()
        finally:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def commit(self, before_replace=None):
        """fsync, set the mode, call ``before_replace(tmp_path)``, then rename over ``dest``."""
        try:
            os.fsync(self.fd)
            self._close()
            self._apply_mode()
            if before_replace is not None:
                before_replace(self.path)
            os.replace(self.path, self.dest)
            self._done = True
        except BaseException:
            self.discard()
            raise
        fsync_directory(os.path.dirname(self.dest) or '.')

    def _apply_mode(self):
        if self.mode is not None:
            os.chmod(self.path, self.mode)
            return
        try:
            current = os.stat(self.dest)
        except OSError:
            os.chmod(self.path, default_file_mode())
            return
        os.chmod(self.path, current.st_mode & 0o7777)
        if hasattr(os, 'geteuid') and os.geteuid() == 0:
            try:
                os.chown(self.path, current.st_uid, current.st_gid)
            except OSError:
                pass


def write_atomic(dest, data, mode):
    """Write ``data`` to ``dest`` atomically with permissions ``mode``.

    Temporary file in the same directory, fsync, chmod, ``os.replace``; the temporary file
    is removed on any failure and ``dest`` is left as it was.
    """
    with AtomicFile(dest, mode=mode) as handle:
        handle.write(data)
        handle.commit()


def write_if_changed(path, data, mode, check_mode=False):
    """Make ``path`` hold ``data`` with permissions ``mode``; return whether anything changed.

    Same bytes (sizes, then :func:`sha256_file` against the SHA-256 of ``data``): nothing is
    written, so the file keeps its inode and mtime; a differing mode alone is fixed with chmod
    and counts as a change.  Otherwise :func:`write_atomic`.  ``check_mode``: only report.  The
    parent directory must exist.  Raises ``OSError`` (``IsADirectoryError`` for a directory).
    """
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    try:
        current = os.stat(path)
    except FileNotFoundError:  # also a dangling symlink: replaced like a missing file
        current = None
    # Only a regular file is hashed: reading a FIFO or device could block or never end.
    if (current is not None and stat.S_ISREG(current.st_mode) and current.st_size == len(data)
            and sha256_file(path) == hashlib.sha256(data).hexdigest()):
        if (current.st_mode & 0o7777) == mode:
            return False
        if not check_mode:
            os.chmod(path, mode)
        return True
    if not check_mode:
        write_atomic(path, data, mode)
    return True
