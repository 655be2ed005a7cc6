# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for module_utils/reproducible.py, file_ops.write_if_changed, and the pinned artifact bytes."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import stat
import tarfile
import zlib

import pytest

from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_bundle as cb
from ansible_collections.goship.deploy.plugins.module_utils import debian_package as dp
from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError
from ansible_collections.goship.deploy.plugins.module_utils.file_ops import write_if_changed
from ansible_collections.goship.deploy.plugins.module_utils.reproducible import (
    ReproducibleError,
    TarMember,
    effective_mtime,
    gzip_adaptive,
    gzip_bytes,
    parse_mode,
    path_sort_key,
    tar_archive,
)

MTIME = 1700000000


# --------------------------------------------------------------------------
# effective_mtime
# --------------------------------------------------------------------------

def test_explicit_mtime_wins_over_source_date_epoch():
    assert effective_mtime(5, {'SOURCE_DATE_EPOCH': '1234'}) == 5
    assert effective_mtime(0, {'SOURCE_DATE_EPOCH': '1234'}) == 0


@pytest.mark.parametrize('raw, expected', [(None, 0), ('', 0), ('   ', 0), ('1234', 1234), (' 1234\n', 1234),
                                           ('0', 0), ('0042', 42)])
def test_source_date_epoch(raw, expected):
    environ = {} if raw is None else {'SOURCE_DATE_EPOCH': raw}
    assert effective_mtime(None, environ) == expected


def test_source_date_epoch_defaults_to_the_process_environment(monkeypatch):
    monkeypatch.setenv('SOURCE_DATE_EPOCH', '77')
    assert effective_mtime() == 77
    monkeypatch.delenv('SOURCE_DATE_EPOCH')
    assert effective_mtime() == 0


# The stricter of the two old rules: digits only (no sign, no '_', no fraction, no non-ASCII digits).
@pytest.mark.parametrize('raw', ['yesterday', '-5', '+5', '1_000', '1.5', '1e9', '\u00b2', '\u0661\u0662', '12 34'])
def test_bad_source_date_epoch_is_an_error_not_zero(raw):
    with pytest.raises(ReproducibleError, match='SOURCE_DATE_EPOCH must be a whole number of seconds') as err:
        effective_mtime(None, {'SOURCE_DATE_EPOCH': raw})
    assert repr(raw) in str(err.value)


@pytest.mark.parametrize('mtime', [-1, True, '5', 1.5])
def test_bad_explicit_mtime(mtime):
    with pytest.raises(ReproducibleError, match='mtime must be a whole number of seconds') as err:
        effective_mtime(mtime, {})
    assert repr(mtime) in str(err.value)
    if mtime == -1:
        assert 'mtime must not be negative' in str(err.value)


def test_the_error_is_a_goship_error_and_a_value_error():
    with pytest.raises(ReproducibleError) as err:
        effective_mtime(-1)
    assert isinstance(err.value, GoshipError) and isinstance(err.value, ValueError)
    assert err.value.result() == {'msg': str(err.value)}


def test_callers_keep_their_errors_with_the_shared_wording(tmp_path):
    with pytest.raises(cb.BundleError) as err:
        cb.build_bundle('version: 0.0\nos: linux\n', [], mtime=-1)
    with pytest.raises(ReproducibleError) as shared:
        effective_mtime(-1)
    assert err.value.problems == [str(shared.value)]
    with pytest.raises(cb.BundleError) as err:
        cb.bundle_entries('version: 0.0\nos: linux\n', [(b'x', 'x', 'rwx')])
    assert err.value.problems == ["x: mode must be octal digits such as '0644' or '0755' (at most 07777), not 'rwx'"]
    src = tmp_path / 'f'
    src.write_bytes(b'x')
    spec = dp.PackageSpec(name='pkg', version='1', maintainer='J D <j@example.com>', description='d',
                          files=[dp.FileEntry(str(src), '/f', 'rwx')], mtime=-1)
    problems = dp.validate(spec, environ={})
    assert str(shared.value) in problems
    assert "files[0]: mode must be octal digits such as '0644' or '0755' (at most 07777), not 'rwx'" in problems


# --------------------------------------------------------------------------
# parse_mode
# --------------------------------------------------------------------------

@pytest.mark.parametrize('mode, expected', [('0644', 0o644), ('755', 0o755), ('0o750', 0o750), (' 0600 ', 0o600),
                                            (0o600, 0o600), ('04755', 0o4755), ('07777', 0o7777), (0, 0),
                                            (None, 0o640), ('', 0o640)])
def test_parse_mode(mode, expected):
    assert parse_mode(mode, 0o640) == expected


@pytest.mark.parametrize('mode, shown', [('0999', "'0999'"), ('rwxr-xr-x', "'rwxr-xr-x'"), ('17777', "'17777'"),
                                         ('0o', "'0o'"), (0o10000, '0o10000'), (-1, '-0o1'), (True, 'True'),
                                         (1.5, '1.5')])
def test_bad_mode_has_one_wording(mode, shown):
    with pytest.raises(ReproducibleError) as err:
        parse_mode(mode, 0o644)
    assert str(err.value) == "mode must be octal digits such as '0644' or '0755' (at most 07777), not %s" % shown


# --------------------------------------------------------------------------
# tar
# --------------------------------------------------------------------------

def test_path_sort_key_puts_a_directory_right_before_its_contents():
    paths = ['app-x', 'app/b', './', 'app/', 'app/a/z', 'app/a/']
    assert sorted(paths, key=path_sort_key) == ['./', 'app/', 'app/a/', 'app/a/z', 'app/b', 'app-x']
    assert path_sort_key('./usr/bin/') == path_sort_key('/usr/bin') == ('usr', 'bin')


def _members():
    return [TarMember('app', None, 0o755), TarMember('app/run.sh', b'#!/bin/sh\n', 0o755),
            TarMember('app/etc/x.conf', b'x=1\n', 0o640, owner='svc', group='1001'), TarMember('app/etc', None, 0o750)]


def test_tar_is_deterministic_gnu_root_owned_and_sorted():
    first = tar_archive(_members(), MTIME)
    assert tar_archive(list(reversed(_members())), MTIME) == first
    assert tar_archive(_members(), MTIME + 1) != first
    assert b'ustar  \0' in first[:512]           # GNU magic: no pax headers, no atime/ctime
    assert b'PaxHeader' not in first and b'atime=' not in first
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        infos = tar.getmembers()
        assert tar.extractfile('app/etc/x.conf').read() == b'x=1\n'
    assert [i.name for i in infos] == ['app', 'app/etc', 'app/etc/x.conf', 'app/run.sh']
    assert [(i.isdir(), i.mode, i.mtime) for i in infos] == [(True, 0o755, MTIME), (True, 0o750, MTIME),
                                                             (False, 0o640, MTIME), (False, 0o755, MTIME)]
    owners = {i.name: (i.uid, i.gid, i.uname, i.gname) for i in infos}
    assert owners['app'] == owners['app/run.sh'] == (0, 0, 'root', 'root')
    # A named owner stays a name (uid 0 as fallback); a numeric one is the id with no name (as dpkg reads it).
    assert owners['app/etc/x.conf'] == (0, 1001, 'svc', '')


# --------------------------------------------------------------------------
# gzip
# --------------------------------------------------------------------------

def test_gzip_is_deterministic_without_name_or_time():
    data = b''.join(b'line %d\n' % n for n in range(5000))
    first = gzip_bytes(data, level=9)
    assert gzip_bytes(data, level=9) == first
    assert first[:3] == b'\x1f\x8b\x08'
    assert first[3] & 0x08 == 0                  # FLG: no FNAME
    assert first[4:8] == b'\0\0\0\0'             # MTIME 0
    assert first[8] == 2                         # XFL: maximum compression
    assert gzip.decompress(first) == data
    fast = gzip_bytes(data, level=1)
    assert fast != first and fast[8] == 4 and gzip.decompress(fast) == data


def test_gzip_level_is_required():
    with pytest.raises(TypeError):
        gzip_bytes(b'x')  # pylint: disable=missing-kwoa


# --------------------------------------------------------------------------
# file_ops.write_if_changed
# --------------------------------------------------------------------------

def test_write_if_changed(tmp_path):
    path = tmp_path / 'a.bin'
    assert write_if_changed(str(path), b'one', 0o640, check_mode=True) is True and not path.exists()
    assert write_if_changed(str(path), b'one', 0o640) is True
    assert path.read_bytes() == b'one' and stat.S_IMODE(path.stat().st_mode) == 0o640
    os.utime(path, (1000000000, 1000000000))
    inode = path.stat().st_ino
    # Same bytes and mode: untouched (inode and mtime kept).
    assert write_if_changed(str(path), b'one', 0o640) is False
    assert (path.stat().st_ino, path.stat().st_mtime) == (inode, 1000000000)
    # Same bytes, other mode: only the mode is fixed, and that is a change.
    assert write_if_changed(str(path), b'one', 0o644, check_mode=True) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert write_if_changed(str(path), b'one', 0o644) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert (path.stat().st_ino, path.stat().st_mtime) == (inode, 1000000000)
    # Same size, other bytes: rewritten atomically (a new inode), no temporary file left.
    assert write_if_changed(str(path), b'two', 0o644, check_mode=True) is True and path.read_bytes() == b'one'
    assert write_if_changed(str(path), b'two', 0o644) is True and path.read_bytes() == b'two'
    assert path.stat().st_ino != inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.bin']


def test_write_if_changed_errors_and_links(tmp_path):
    with pytest.raises(IsADirectoryError):
        write_if_changed(str(tmp_path), b'x', 0o644)
    with pytest.raises(FileNotFoundError):
        write_if_changed(str(tmp_path / 'missing' / 'x'), b'x', 0o644)
    link = tmp_path / 'link'
    link.symlink_to(tmp_path / 'nowhere')
    assert write_if_changed(str(link), b'x', 0o644) is True
    assert not link.is_symlink() and link.read_bytes() == b'x'


# --------------------------------------------------------------------------
# Pinned bytes
#
# The sha256 values below were measured on the code BEFORE the refactor that introduced
# reproducible.py (debian_package and codedeploy_bundle each with their own mtime, mode,
# tar and gzip code; CPython 3.11.7, zlib 1.2.13), by building these exact inputs with
# dp.build and cb.build_bundle.  They must not change: hosts, S3 and the deploy ledger
# compare artifacts by checksum, so the same inputs giving other bytes would look like a
# new release and redeploy everywhere.  A change here is only right when an artifact's
# format is changed on purpose, and then it is a release note, not a test update.
# One such change since: the .deb's gzip streams went from level 9 to gzip_adaptive at level 6
# (three times faster on a Go binary; incompressible blocks stored), so its pin was measured
# again after that change alone (changelog fragment deb_build-gzip-level.yml); its tars are the
# same.
# --------------------------------------------------------------------------

PIN_MTIME = 1700000000
PIN_SERVICE = (b'[Unit]\nDescription=pin\n\n[Service]\nExecStart=/usr/bin/pin\n\n'
               b'[Install]\nWantedBy=multi-user.target\n')
PIN_APPSPEC = ('version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n'
               '    - location: scripts/start.sh\n      timeout: 60\n')

# Uncompressed tars: independent of the zlib build.
PINNED_TARS = {
    'deb control.tar': '49353ddf184cca50e5c639664e22102b504c7725a9c04f51aeff3ff97d0640d3',
    'deb data.tar': 'baa3d41df06d35a21ba59eca2cc7791d1805f5e3fc0fefec4ae7aff7192394b4',
    'bundle tar': '9d5975e5673881d79e95fcccd9c0433b1826871ff9903b1df193f1d7f66c6635',
}
# The artifacts as shipped: compressed bytes also depend on the zlib build.
PINNED_ZLIB = '1.2.13'
PINNED_ARTIFACTS = {
    'deb': '63273f297db6b8f0e7ebe46dd6ffc1271da687255f6d4b3915bb6af984404c95',   # gzip_adaptive, level 6
    'zip': '82d83879152665c39a5b1bbb958c5261db1cce5c9a066b30866c99ee3ade2501',
    'tgz': 'a55ab455c8e937b028d1775c668e49d5da2f82288c7e1b3fd36b5c50ce55c737',
    'tar': '9d5975e5673881d79e95fcccd9c0433b1826871ff9903b1df193f1d7f66c6635',
}


def _pin_deb(tmp_path):
    src = tmp_path / 'deb-src'
    src.mkdir()
    (src / 'pin').write_bytes(b'#!/bin/sh\necho pin\n' + bytes(range(256)) * 8)
    (src / 'pin.yml').write_bytes(b'listen: 0.0.0.0:8080\n')
    (src / 'pin.service').write_bytes(PIN_SERVICE)
    spec = dp.PackageSpec(
        name='pin', version='1.2.3-1', maintainer='Ops Team <ops@example.com>',
        description='pinned package\nUsed to pin the archive bytes.', architecture='arm64',
        depends=['libc6 (>= 2.34)'],
        files=[dp.FileEntry(str(src / 'pin'), '/usr/bin/pin', '0755'),
               dp.FileEntry(str(src / 'pin.yml'), '/etc/pin/pin.yml', '0640', owner='pin', group='1000'),
               dp.FileEntry(str(src / 'pin.service'), '/lib/systemd/system/pin.service')],
        directories=[dp.DirectoryEntry('/var/lib/pin', '0750', owner='pin', group='pin')],
        scripts={'postinst': 'echo configured\n'},
        mtime=PIN_MTIME)
    return dp.build(spec, environ={})


def _pin_bundle(fmt):
    files = [(b'#!/bin/sh\nexec /usr/bin/pin\n', 'scripts/start.sh', 0o755),
             (b'listen: 0.0.0.0:8080\n', 'app/etc/pin.yml', '0640'),
             (bytes(range(256)) * 8, 'app/bin/pin', None)]
    return cb.build_bundle(PIN_APPSPEC, files, fmt=fmt, mtime=PIN_MTIME)


def _ar_members(data):
    pos, out = 8, {}
    while pos < len(data):
        size = int(data[pos + 48:pos + 58])
        out[data[pos:pos + 16].decode().strip()] = data[pos + 60:pos + 60 + size]
        pos += 60 + size + size % 2
    return out


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def test_pinned_archive_layout_and_gzip_levels(tmp_path):
    """Any zlib: the tars are pinned, and each gzip stream is exactly its tar at the artifact's level."""
    members = _ar_members(_pin_deb(tmp_path))
    tgz = _pin_bundle('tgz')
    streams = {'deb control.tar': (members['control.tar.gz'], gzip_adaptive, dp.GZIP_LEVEL),
               'deb data.tar': (members['data.tar.gz'], gzip_adaptive, dp.GZIP_LEVEL),
               'bundle tar': (tgz, gzip_bytes, 6)}
    for name, (stream, compress, level) in streams.items():
        raw = gzip.decompress(stream)
        assert _sha(raw) == PINNED_TARS[name], name
        assert compress(raw, level=level) == stream, '%s is not %s level %d' % (name, compress.__name__, level)
    assert _pin_bundle('tar') == gzip.decompress(tgz)


@pytest.mark.skipif(zlib.ZLIB_RUNTIME_VERSION != PINNED_ZLIB,
                    reason='compressed bytes were pinned with zlib %s (the layout test still runs)' % PINNED_ZLIB)
def test_pinned_artifact_bytes(tmp_path):
    built = {'deb': _pin_deb(tmp_path)}
    built.update((fmt, _pin_bundle(fmt)) for fmt in cb.FORMATS)
    assert {name: _sha(data) for name, data in built.items()} == PINNED_ARTIFACTS


# --------------------------------------------------------------------------
# gzip_adaptive
# --------------------------------------------------------------------------

def _deflate_blocks_stored(stream):
    """Whether the stream's bytes are (nearly) as long as the data: stored, not compressed."""
    return len(stream) >= len(gzip.decompress(stream))


@pytest.mark.parametrize('size', [0, 1, 100, 64 * 1024, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024 + 17])
def test_gzip_adaptive_round_trips_and_is_deterministic(size):
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    stream = gzip_adaptive(data, level=6)
    assert gzip.decompress(stream) == data
    assert gzip_adaptive(data, level=6) == stream
    assert stream[:10] == b'\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff'   # mtime 0, no name


def test_gzip_adaptive_stores_what_does_not_compress_and_compresses_the_rest():
    noise = random.Random(7).randbytes(2 * 1024 * 1024)
    text = b'the same line again and again\n' * 70000
    assert _deflate_blocks_stored(gzip_adaptive(noise, level=6))
    assert len(gzip_adaptive(noise, level=6)) < len(noise) + 1024   # stored: a few bytes per block
    assert len(gzip_adaptive(text, level=6)) < len(text) // 50
    mixed = text[:1024 * 1024] + noise[:1024 * 1024]
    out = gzip_adaptive(mixed, level=6)
    assert gzip.decompress(out) == mixed
    assert 1024 * 1024 < len(out) < 1024 * 1024 + 40 * 1024   # the text block compressed, the noise stored
