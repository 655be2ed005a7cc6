# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for module_utils/debian_package.py and the modules it is built from
(debian_spec, debian_validation, debian_scripts, debian_format).

Built packages are inspected with the real dpkg tools (dpkg-deb --info,
--contents, --field, -x, -e); tests needing them are skipped when dpkg-deb
is not installed (e.g. on macOS).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import shutil
import stat
import subprocess
import tarfile

import pytest

from ansible_collections.goship.deploy.plugins.module_utils import debian_package as dp
from ansible_collections.goship.deploy.plugins.module_utils import (
    debian_format,
    debian_scripts,
    debian_spec,
    debian_validation,
)
from ansible_collections.goship.deploy.plugins.module_utils.debian_package import (
    DirectoryEntry,
    FileEntry,
    PackageSpec,
    PackageValidationError,
    SystemdUnit,
)
from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError
from ansible_collections.goship.deploy.plugins.module_utils.reproducible import parse_mode

DPKG_DEB = shutil.which('dpkg-deb')
DPKG = shutil.which('dpkg')
needs_dpkg = pytest.mark.skipif(DPKG_DEB is None, reason='dpkg-deb not installed')

MTIME = 1700000000
UNIT_TEXT = (
    '[Unit]\nDescription=goship agent\n\n'
    '[Service]\nExecStart=/usr/bin/goship-agent\n\n'
    '[Install]\nWantedBy=multi-user.target\n'
)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

@pytest.fixture
def srcdir(tmp_path):
    d = tmp_path / 'src'
    d.mkdir()
    (d / 'agent').write_bytes(b'#!/bin/sh\necho agent\n' + b'x' * 3000)
    (d / 'agent.yml').write_text('listen: 0.0.0.0:8080\n')
    (d / 'goship-agent.service').write_text(UNIT_TEXT)
    (d / 'README').write_text('readme\n')
    return d


def make_spec(srcdir, **overrides):
    values = dict(
        name='goship-agent',
        version='1.214-1',
        maintainer='Jane Doe <jane@example.com>',
        description='goship deployment agent\nThe agent runs on every node.\n\nSecond paragraph.',
        architecture='amd64',
        depends=['libc6 (>= 2.34)', 'adduser | passwd'],
        homepage='https://example.com/goship',
        files=[
            FileEntry(str(srcdir / 'agent'), '/usr/bin/goship-agent', '0755'),
            FileEntry(str(srcdir / 'agent.yml'), '/etc/goship/agent.yml', '0640'),
            FileEntry(str(srcdir / 'README'), '/usr/share/doc/goship-agent/README'),
        ],
        mtime=MTIME,
    )
    values.update(overrides)
    return PackageSpec(**values)


def with_unit(srcdir, units=None, **overrides):
    spec = make_spec(srcdir, **overrides)
    spec.files.append(FileEntry(str(srcdir / 'goship-agent.service'), '/lib/systemd/system/goship-agent.service'))
    spec.systemd_units = units if units is not None else [SystemdUnit('goship-agent.service')]
    return spec


def write_deb(tmp_path, data, name='pkg.deb'):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def run(*args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs).stdout


def ar_members(data):
    """Minimal independent ar reader: list of (name, mtime, uid, gid, mode, payload)."""
    assert data[:8] == b'!<arch>\n'
    pos, out = 8, []
    while pos < len(data):
        header = data[pos:pos + 60]
        assert header[58:60] == b'`\n'
        size = int(header[48:58])
        payload = data[pos + 60:pos + 60 + size]
        out.append((header[:16].decode().strip(), int(header[16:28]), int(header[28:34]),
                    int(header[34:40]), header[40:48].decode().strip(), payload))
        pos += 60 + size + (size % 2)
    assert pos == len(data)
    return out


def problems_for(spec):
    return dp.validate(spec, environ={})


def assert_one_problem(spec, *fragments):
    problems = problems_for(spec)
    matching = [p for p in problems if all(f in p for f in fragments)]
    assert matching, 'no problem containing %r in %r' % (fragments, problems)


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------

def test_valid_spec_has_no_problems(srcdir):
    assert problems_for(make_spec(srcdir)) == []
    assert problems_for(with_unit(srcdir)) == []


@pytest.mark.parametrize('version', ['1.214', '1.214-1', '2:1.0~rc1', '0', '1:2.0-1ubuntu1',
                                     '0.0+git20240101-1~bpo12+1', '1.0-a-b', '1:2:3-4'])
def test_valid_versions(version):
    assert dp.validate_version(version) == []


@pytest.mark.parametrize('version, fragment', [
    ('1.2 3', 'contains whitespace'),
    ('v1', 'must start with a digit'),
    ('', 'must not be empty'),
    ('   ', 'must not be empty'),
    ('1.0-', "revision after the last '-' is empty"),
    ('a:1.0', "epoch 'a'"),
    (':1.0', "epoch ''"),
    ('1.0_1', "invalid character(s) '_'"),
    ('1.0-1_2', "revision '1_2' contains invalid character(s) '_'"),
    ('1:', 'upstream version is empty'),
])
def test_invalid_versions(version, fragment):
    problems = dp.validate_version(version)
    assert len(problems) == 1
    assert fragment in problems[0]
    # Every message explains the expected shape with valid examples.
    assert "'1.2.3-1'" in problems[0] and "'2:1.0~rc1'" in problems[0]


@pytest.mark.skipif(DPKG is None, reason='dpkg not installed')
@pytest.mark.parametrize('version', ['1.214', '1.214-1', '2:1.0~rc1', '1.2 3', 'v1', '1.0-', 'a:1.0',
                                     '1.0_1', '1.0-1_2', '1:2:3', '1.0-a-b', ':1.0', '1.0-1-', '1.0~~'])
def test_version_validation_agrees_with_dpkg(version):
    proc = subprocess.run([DPKG, '--validate-version', version], capture_output=True, text=True, check=False)
    dpkg_ok = proc.returncode == 0 and not proc.stderr.strip()
    assert (dp.validate_version(version) == []) == dpkg_ok, proc.stderr


@pytest.mark.parametrize('name, fragment', [
    ('Goship', 'must be lowercase'),
    ('a', 'at least 2 characters'),
    ('-foo', 'must start with a letter or digit'),
    ('foo_bar', "invalid character(s) '_'"),
    ('', 'must not be empty'),
])
def test_invalid_names(srcdir, name, fragment):
    assert_one_problem(make_spec(srcdir, name=name), 'package name', fragment)


@pytest.mark.parametrize('name', ['goship-agent', 'libc6', 'g++', 'a0', 'python3.11'])
def test_valid_names(name):
    assert debian_validation.validate_name(name) == []


@pytest.mark.parametrize('arch, expected', [
    ('amd64', 'amd64'), ('arm64', 'arm64'), ('armhf', 'armhf'), ('i386', 'i386'),
    ('ppc64el', 'ppc64el'), ('s390x', 's390x'), ('riscv64', 'riscv64'), ('all', 'all'),
    ('arm', 'armhf'), ('386', 'i386'), ('ppc64le', 'ppc64el'),
])
def test_architecture_mapping(arch, expected):
    assert debian_spec.normalize_architecture(arch) == expected


@pytest.mark.parametrize('arch', ['x86_64', 'AMD64', 'aarch64', '', 'mips'])
def test_bad_architecture(srcdir, arch):
    assert_one_problem(make_spec(srcdir, architecture=arch), 'architecture', 'not supported', 'GOARCH')


@pytest.mark.parametrize('maintainer', ['Jane Doe', 'jane@example.com', '<jane@example.com>',
                                        'Jane <jane>', 'Jane <jane@example.com', 'A, B <a@b.c>', ''])
def test_bad_maintainer(srcdir, maintainer):
    assert_one_problem(make_spec(srcdir, maintainer=maintainer), 'maintainer', 'Name <email>')


def test_missing_src(srcdir):
    spec = make_spec(srcdir)
    spec.files.append(FileEntry(str(srcdir / 'nope'), '/usr/bin/nope'))
    assert_one_problem(spec, 'files[3]', str(srcdir / 'nope'), 'does not exist')


def test_src_is_directory(srcdir):
    spec = make_spec(srcdir)
    spec.files.append(FileEntry(str(srcdir), '/usr/bin/nope'))
    assert_one_problem(spec, 'files[3]', 'not a regular file')


@pytest.mark.parametrize('dest, fragment', [
    ('usr/bin/x', 'must be an absolute path'),
    ('/usr/../etc/x', "must not contain '..'"),
    ('/usr/bin/x\ny', 'control characters'),
    ('/', "must not be '/'"),
])
def test_bad_dest(srcdir, dest, fragment):
    spec = make_spec(srcdir)
    spec.files.append(FileEntry(str(srcdir / 'README'), dest))
    assert_one_problem(spec, 'files[3]', fragment)


def test_duplicate_dest(srcdir):
    spec = make_spec(srcdir)
    spec.files.append(FileEntry(str(srcdir / 'README'), '/usr/bin//goship-agent'))
    assert_one_problem(spec, 'duplicate dest /usr/bin/goship-agent', 'files[3]', 'files[0]')


def test_file_colliding_with_directory(srcdir):
    spec = make_spec(srcdir)
    spec.files.append(FileEntry(str(srcdir / 'README'), '/usr/bin'))
    assert_one_problem(spec, 'file dest /usr/bin collides with directory')
    spec = make_spec(srcdir, directories=[DirectoryEntry('/usr/bin/goship-agent')])
    assert_one_problem(spec, 'directory /usr/bin/goship-agent collides with a file')
    spec = make_spec(srcdir, directories=[DirectoryEntry('/var/lib/x'), DirectoryEntry('/var/lib/x/')])
    assert_one_problem(spec, 'duplicate directory path /var/lib/x')


@pytest.mark.parametrize('mode', ['0999', 'rwxr-xr-x', 0o10000, -1, '', True])
def test_bad_mode(srcdir, mode):
    spec = make_spec(srcdir)
    spec.files[0].mode = mode
    if mode == '':
        assert problems_for(spec) == []  # empty = default
    else:
        assert_one_problem(spec, 'files[0]', 'mode')


@pytest.mark.parametrize('mode, expected', [('0644', 0o644), ('755', 0o755), ('0o750', 0o750),
                                            (0o600, 0o600), ('04755', 0o4755), (None, 0o644)])
def test_parse_mode(mode, expected):
    assert parse_mode(mode, 0o644) == expected


@pytest.mark.parametrize('item', ['libc6', 'libc6 (>= 2.34)', 'aa | bb (<< 2)', 'python3:any',
                                  'foo (= 1:2.0-1)', 'libfoo [amd64]', 'xy(>=1)'])
def test_valid_relationships(item):
    assert debian_validation.validate_relationship(item)


@pytest.mark.parametrize('item, fragment', [
    ('Libc6', 'is invalid'),
    ('libc6 (> 2)', 'is invalid'),
    ('libc6 >= 2', 'is invalid'),
    ('a |', 'is invalid'),
    ('a, b', 'contains a comma'),
    ('', 'is invalid'),
    (5, 'is invalid'),
])
def test_invalid_relationships(srcdir, item, fragment):
    assert_one_problem(make_spec(srcdir, depends=[item]), 'depends entry', fragment)


def test_relationship_must_be_list(srcdir):
    assert_one_problem(make_spec(srcdir, breaks='foo'), 'breaks must be a list')


def test_all_problems_reported_at_once(srcdir):
    spec = make_spec(srcdir, name='Bad_Name', version='v1', architecture='x86_64', maintainer='nobody')
    spec.files.append(FileEntry(str(srcdir / 'missing'), 'relative/path'))
    problems = problems_for(spec)
    joined = '; '.join(problems)
    for fragment in ('package name', 'version', 'architecture', 'maintainer', 'does not exist',
                     'absolute path'):
        assert fragment in joined
    assert len(problems) >= 6
    # The module joins problems with '; ', so single problems must not contain it.
    assert not [p for p in problems if '; ' in p]
    with pytest.raises(PackageValidationError) as excinfo:
        dp.build(spec, environ={})
    assert excinfo.value.problems == problems


def test_other_fields_validated(srcdir):
    spec = make_spec(srcdir, description='\n  \n', priority='high', section='Bad Section', homepage='a b')
    joined = '; '.join(problems_for(spec))
    assert 'description must not be empty' in joined
    assert "priority 'high'" in joined
    assert "section 'Bad Section'" in joined
    assert "homepage 'a b'" in joined


def test_conffile_validation(srcdir):
    assert_one_problem(make_spec(srcdir, conffiles=['/etc/other.conf']), 'conffile /etc/other.conf',
                       'not one of the packaged files')
    assert_one_problem(make_spec(srcdir, conffiles=['etc/goship/agent.yml']), 'absolute path')
    assert_one_problem(make_spec(srcdir, conffiles=['/etc/goship/agent.yml'] * 2), 'duplicate conffile')


def test_mtime_resolution(srcdir):
    spec = make_spec(srcdir, mtime=None)
    assert debian_spec.effective_mtime(spec, {}) == 0
    assert debian_spec.effective_mtime(spec, {'SOURCE_DATE_EPOCH': '1234'}) == 1234
    assert 'SOURCE_DATE_EPOCH' in '; '.join(dp.validate(spec, environ={'SOURCE_DATE_EPOCH': 'yesterday'}))
    assert debian_spec.effective_mtime(make_spec(srcdir, mtime=5), {'SOURCE_DATE_EPOCH': '1234'}) == 5
    assert_one_problem(make_spec(srcdir, mtime=-1), 'mtime must not be negative')


def test_systemd_unit_validation(srcdir):
    assert_one_problem(make_spec(srcdir, systemd_units=[SystemdUnit('goship-agent.service')]),
                       'goship-agent.service is not among files')
    assert_one_problem(with_unit(srcdir, [SystemdUnit('foo@.service')]), 'template')
    assert_one_problem(with_unit(srcdir, [SystemdUnit('goship-agent')]), 'not a valid unit file name')
    assert_one_problem(with_unit(srcdir, [SystemdUnit('goship-agent.service')] * 2), 'duplicate systemd unit')
    # A unit under /usr/lib/systemd/system is fine too.
    spec = make_spec(srcdir, systemd_units=[SystemdUnit('goship-agent.service')])
    spec.files.append(FileEntry(str(srcdir / 'goship-agent.service'), '/usr/lib/systemd/system/goship-agent.service'))
    assert problems_for(spec) == []


def test_full_script_without_token_rejected_when_units_given(srcdir):
    spec = with_unit(srcdir, scripts={'postinst': '#!/bin/sh\nset -e\necho hi\n'})
    assert_one_problem(spec, 'scripts.postinst is a complete script', '#DEBHELPER#')
    # Without units the same script is fine.
    assert problems_for(make_spec(srcdir, scripts={'postinst': '#!/bin/sh\necho hi\n'})) == []
    assert_one_problem(make_spec(srcdir, scripts={'config': 'x'}), "unknown maintainer script 'config'")


def test_from_dict_builds_nested_entries(srcdir):
    spec = PackageSpec.from_dict({
        'name': 'x1', 'version': '1.0', 'maintainer': 'A B <a@b.c>', 'description': 'd',
        'section': None, 'depends': None,
        'files': [{'src': str(srcdir / 'README'), 'dest': '/x', 'mode': None, 'owner': 'root', 'group': 'root'}],
        'directories': [{'path': '/var/lib/x', 'mode': '0700'}],
        'systemd_units': [{'name': 'a.service', 'enable': False}],
        'scripts': {'postinst': {'content': 'echo'}, 'prerm': None},
        'unrelated': 1,
    })
    assert spec.files == [FileEntry(str(srcdir / 'README'), '/x')]
    assert spec.directories == [DirectoryEntry('/var/lib/x', '0700')]
    assert spec.systemd_units == [SystemdUnit('a.service', enable=False)]
    assert spec.scripts == {'postinst': 'echo'}
    assert spec.depends == [] and spec.section is None


# --------------------------------------------------------------------------
# build: archive structure and reproducibility
# --------------------------------------------------------------------------

def test_build_is_reproducible(srcdir, tmp_path):
    first = dp.build(make_spec(srcdir), environ={})
    assert dp.build(make_spec(srcdir), environ={}) == first
    # Order of files in the spec and location of the sources do not matter.
    other = tmp_path / 'elsewhere'
    shutil.copytree(srcdir, other)
    os.utime(other / 'agent', (1, 1))
    spec = make_spec(other)
    spec.files.reverse()
    assert dp.build(spec, environ={}) == first
    # A different mtime gives different bytes.
    assert dp.build(make_spec(srcdir, mtime=MTIME + 1), environ={}) != first


def test_source_date_epoch_is_used(srcdir):
    from_env = dp.build(make_spec(srcdir, mtime=None), environ={'SOURCE_DATE_EPOCH': str(MTIME)})
    assert from_env == dp.build(make_spec(srcdir), environ={})
    assert dp.build(make_spec(srcdir, mtime=None), environ={}) != from_env


def test_ar_layout(srcdir):
    members = ar_members(dp.build(make_spec(srcdir), environ={}))
    assert [m[0] for m in members] == ['debian-binary', 'control.tar.gz', 'data.tar.gz']
    for _name, mtime, uid, gid, mode, _payload in members:
        assert (mtime, uid, gid, mode) == (MTIME, 0, 0, '100644')
    assert members[0][5] == b'2.0\n'


def test_gzip_and_tar_headers_are_deterministic(srcdir):
    for name, _m, _u, _g, _mode, payload in ar_members(dp.build(make_spec(srcdir), environ={}))[1:]:
        assert payload[:2] == b'\x1f\x8b'
        assert payload[3] & 0x08 == 0, '%s: gzip header has a file name' % name
        assert payload[4:8] == b'\0\0\0\0', '%s: gzip header has an mtime' % name
        raw = gzip.decompress(payload)
        assert b'ustar  \0' in raw[:512]          # GNU format magic
        assert b'PaxHeader' not in raw and b'atime=' not in raw and b'ctime=' not in raw
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            infos = tar.getmembers()
        assert infos[0].name in ('.', './')
        names = [i.name for i in infos]
        for info in infos:
            assert info.name.startswith('.')
            assert (info.uid, info.gid, info.uname, info.gname, info.mtime) == (0, 0, 'root', 'root', MTIME)
            assert not info.pax_headers
        if name == 'data.tar.gz':
            assert names == sorted(names, key=lambda n: n.strip('./').split('/'))


def test_long_paths_and_owner(srcdir, tmp_path):
    deep = '/opt/' + '/'.join(['d' * 40] * 4) + '/file.txt'
    spec = make_spec(srcdir)
    spec.files.append(FileEntry(str(srcdir / 'README'), deep, '0600', owner='goship', group='adm'))
    built = dp.build_package(spec, environ={})
    assert {'path': '.' + deep, 'type': 'file', 'mode': '0600', 'size': 7, 'owner': 'goship',
            'group': 'adm'} in built.contents
    if DPKG_DEB:
        rows = [line.split(None, 5) for line in run(DPKG_DEB, '--contents', write_deb(tmp_path, built.data))
                .splitlines()]
        assert ['-rw-------', 'goship/adm', '7', '2023-11-14', '22:13', '.' + deep] in rows


def test_list_contents_matches_build(srcdir):
    spec = with_unit(srcdir, directories=[DirectoryEntry('/var/lib/goship', '0750', owner='goship')])
    contents = dp.list_contents(spec, environ={})
    assert contents == dp.build_package(spec, environ={}).contents
    by_path = {c['path']: c for c in contents}
    assert by_path['./'] == {'path': './', 'type': 'directory', 'mode': '0755', 'size': 0,
                             'owner': 'root', 'group': 'root'}
    assert by_path['./var/lib/goship/']['mode'] == '0750'
    assert by_path['./var/lib/goship/']['owner'] == 'goship'
    assert by_path['./var/lib/']['mode'] == '0755'
    assert by_path['./usr/bin/goship-agent']['size'] == (srcdir / 'agent').stat().st_size


def test_source_read_error(tmp_path):
    with pytest.raises(dp.SourceReadError) as excinfo:
        dp._read_file(str(tmp_path))
    assert excinfo.value.path == str(tmp_path)
    assert str(tmp_path) in str(excinfo.value)


def test_errors_share_the_goship_root_and_keep_their_old_bases(srcdir, tmp_path):
    """deb_build ends with one ``except GoshipError``; callers catching ValueError/OSError keep working."""
    for klass, base in ((dp.PackageValidationError, ValueError), (dp.SourceReadError, OSError),
                        (debian_spec.PackageWriteError, OSError), (debian_spec.ArchiveFormatError, ValueError)):
        assert issubclass(klass, GoshipError) and issubclass(klass, base)

    with pytest.raises(PackageValidationError) as excinfo:
        dp.build(make_spec(srcdir, name='Bad_Name', version='v1'), environ={})
    problems = excinfo.value.problems
    assert len(problems) == 2
    assert excinfo.value.result() == {'msg': '; '.join(problems), 'problems': problems}

    with pytest.raises(dp.SourceReadError) as excinfo:
        dp._read_file(str(tmp_path))
    assert excinfo.value.result() == {'msg': 'cannot read source file %s: Is a directory' % tmp_path}
    assert str(excinfo.value) == excinfo.value.message
    assert excinfo.value.errno is None   # an OSError by class only: no errno parsed from the arguments
    assert str(debian_spec.SourceReadError('/x', 'gone', what='scripts.postinst.src')) == \
        'cannot read scripts.postinst.src /x: gone'
    assert str(debian_spec.PackageWriteError('/out/x.deb', 'Permission denied')) == \
        'cannot write /out/x.deb: Permission denied'


def test_ar_archive_refuses_what_its_header_cannot_describe():
    with pytest.raises(debian_spec.ArchiveFormatError, match='at most 16 characters'):
        debian_format.ar_archive([('a-member-name-longer-than-16', b'')], 0)
    with pytest.raises(ValueError):
        debian_format.ar_archive([('x', b'')], 10 ** 12)   # mtime wider than its 12 columns


# --------------------------------------------------------------------------
# control file
# --------------------------------------------------------------------------

def test_control_text_and_order(srcdir):
    spec = make_spec(srcdir, pre_depends=['dpkg (>= 1.17)'], recommends=['curl'], suggests=['jq'],
                     conflicts=['old-agent'], breaks=['old-agent (<< 2)'], replaces=['old-agent'],
                     provides=['agent'], section='admin', priority='standard', architecture='arm')
    built = dp.build_package(spec, environ={})
    keys = [line.split(':', 1)[0] for line in built.control_text.splitlines() if not line.startswith(' ')]
    assert keys == ['Package', 'Version', 'Architecture', 'Maintainer', 'Installed-Size', 'Pre-Depends',
                    'Depends', 'Recommends', 'Suggests', 'Conflicts', 'Breaks', 'Replaces', 'Provides',
                    'Section', 'Priority', 'Homepage', 'Description']
    assert built.control['Architecture'] == 'armhf'
    assert built.control['Depends'] == 'libc6 (>= 2.34), adduser | passwd'
    assert built.control_text.endswith(
        'Description: goship deployment agent\n The agent runs on every node.\n .\n Second paragraph.\n')
    assert debian_format.parse_control(built.control_text)['Package'] == 'goship-agent'


def test_defaults_in_control(srcdir):
    control = dp.build_package(make_spec(srcdir, depends=[], homepage=None), environ={}).control
    assert control['Section'] == 'misc'
    assert control['Priority'] == 'optional'
    assert 'Depends' not in control and 'Homepage' not in control


def test_installed_size_like_dpkg_gencontrol(srcdir):
    spec = make_spec(srcdir)
    built = dp.build_package(spec, environ={})
    files = [c for c in built.contents if c['type'] == 'file']
    dirs = [c for c in built.contents if c['type'] == 'directory']
    expected = sum(math.ceil(f['size'] / 1024) for f in files) + len(dirs)
    assert int(built.control['Installed-Size']) == expected
    assert int(built.control['Installed-Size']) >= math.ceil(sum(f['size'] for f in files) / 1024)


def test_format_description():
    assert debian_format.format_description('One line') == 'One line'
    assert debian_format.format_description('\nSyn\n\n\nA\n\n\n  indented\n\n') == 'Syn\n A\n .\n .\n   indented'


# --------------------------------------------------------------------------
# inspection with the real dpkg-deb
# --------------------------------------------------------------------------

@needs_dpkg
def test_dpkg_deb_info_and_fields(srcdir, tmp_path):
    deb = write_deb(tmp_path, dp.build(make_spec(srcdir), environ={}))
    info = run(DPKG_DEB, '--info', deb)
    assert 'new Debian package, version 2.0.' in info
    assert run(DPKG_DEB, '--field', deb, 'Package') == 'goship-agent\n'
    assert run(DPKG_DEB, '--field', deb, 'Version') == '1.214-1\n'
    assert run(DPKG_DEB, '--field', deb, 'Architecture') == 'amd64\n'
    assert run(DPKG_DEB, '--field', deb, 'Maintainer') == 'Jane Doe <jane@example.com>\n'
    assert run(DPKG_DEB, '--field', deb, 'Depends') == 'libc6 (>= 2.34), adduser | passwd\n'
    assert run(DPKG_DEB, '--field', deb, 'Description') == (
        'goship deployment agent\n The agent runs on every node.\n .\n Second paragraph.\n')
    assert run(DPKG_DEB, '--showformat=${Installed-Size}', '--show', deb) == \
        dp.build_package(make_spec(srcdir), environ={}).control['Installed-Size']


@needs_dpkg
def test_dpkg_deb_contents(srcdir, tmp_path):
    deb = write_deb(tmp_path, dp.build(make_spec(srcdir), environ={}))
    rows = [line.split(None, 5) for line in run(DPKG_DEB, '--contents', deb).splitlines()]
    listing = {row[5]: (row[0], row[1]) for row in rows}
    assert [row[5] for row in rows] == [
        './', './etc/', './etc/goship/', './etc/goship/agent.yml', './usr/', './usr/bin/',
        './usr/bin/goship-agent', './usr/share/', './usr/share/doc/', './usr/share/doc/goship-agent/',
        './usr/share/doc/goship-agent/README']
    assert all(owner == 'root/root' for _perm, owner in listing.values())
    assert listing['./usr/bin/goship-agent'][0] == '-rwxr-xr-x'
    assert listing['./etc/goship/agent.yml'][0] == '-rw-r-----'
    assert listing['./usr/share/doc/goship-agent/README'][0] == '-rw-r--r--'
    assert listing['./usr/share/doc/'][0] == 'drwxr-xr-x'
    assert all(row[3] == '2023-11-14' and row[4] == '22:13' for row in rows)


@needs_dpkg
def test_dpkg_deb_extract_matches_sources_and_md5sums(srcdir, tmp_path):
    deb = write_deb(tmp_path, dp.build(make_spec(srcdir), environ={}))
    root, control = tmp_path / 'root', tmp_path / 'DEBIAN'
    run(DPKG_DEB, '-x', deb, str(root))
    run(DPKG_DEB, '-e', deb, str(control))
    assert (root / 'usr/bin/goship-agent').read_bytes() == (srcdir / 'agent').read_bytes()
    assert stat.S_IMODE((root / 'usr/bin/goship-agent').stat().st_mode) == 0o755
    assert stat.S_IMODE((root / 'etc/goship/agent.yml').stat().st_mode) == 0o640
    assert int((root / 'usr/bin/goship-agent').stat().st_mtime) == MTIME

    lines = (control / 'md5sums').read_text().splitlines()
    assert [line.split('  ', 1)[1] for line in lines] == [
        'etc/goship/agent.yml', 'usr/bin/goship-agent', 'usr/share/doc/goship-agent/README']
    for line in lines:
        digest, path = line.split('  ', 1)
        assert hashlib.md5((root / path).read_bytes()).hexdigest() == digest
    assert (control / 'conffiles').read_text() == '/etc/goship/agent.yml\n'
    assert (control / 'control').read_text() == dp.build_package(make_spec(srcdir), environ={}).control_text


@needs_dpkg
def test_conffiles_override(srcdir, tmp_path):
    spec = make_spec(srcdir, conffiles=['/usr/share/doc/goship-agent/README'])
    control = tmp_path / 'DEBIAN'
    run(DPKG_DEB, '-e', write_deb(tmp_path, dp.build(spec, environ={})), str(control))
    assert (control / 'conffiles').read_text() == '/usr/share/doc/goship-agent/README\n'
    # An empty list means no conffiles at all.
    built = dp.build_package(make_spec(srcdir, conffiles=[]), environ={})
    assert built.conffiles == []
    assert 'conffiles' not in run(DPKG_DEB, '--info', write_deb(tmp_path, built.data, 'b.deb'))


@needs_dpkg
def test_read_control(srcdir, tmp_path):
    built = dp.build_package(make_spec(srcdir), environ={})
    assert debian_format.read_control(built.data) == built.control_text
    assert debian_format.read_control(b'not a deb') is None
    assert debian_format.read_control(built.data[:200]) is None
    # A package built by dpkg-deb itself (xz-compressed members).
    tree = tmp_path / 'tree'
    (tree / 'DEBIAN').mkdir(parents=True)
    (tree / 'DEBIAN' / 'control').write_text(built.control_text)
    out = tmp_path / 'ref.deb'
    run(DPKG_DEB, '--root-owner-group', '-Zxz', '--build', str(tree), str(out))
    assert debian_format.read_control(out.read_bytes()) == built.control_text


# --------------------------------------------------------------------------
# maintainer scripts and systemd snippets
# --------------------------------------------------------------------------

def sh_syntax_ok(text):
    proc = subprocess.run(['sh', '-n'], input=text, capture_output=True, text=True, check=False)
    return proc.returncode == 0, proc.stderr


@needs_dpkg
def test_systemd_snippets_in_package(srcdir, tmp_path):
    spec = with_unit(srcdir)
    control = tmp_path / 'DEBIAN'
    run(DPKG_DEB, '-e', write_deb(tmp_path, dp.build(spec, environ={})), str(control))
    postinst = (control / 'postinst').read_text()
    prerm = (control / 'prerm').read_text()
    postrm = (control / 'postrm').read_text()
    assert not (control / 'preinst').exists()
    for text in (postinst, prerm, postrm):
        assert text.startswith('#!/bin/sh\nset -e\n')
        assert sh_syntax_ok(text) == (True, '')
    for name in ('postinst', 'prerm', 'postrm'):
        assert stat.S_IMODE((control / name).stat().st_mode) == 0o755
    assert "deb-systemd-helper unmask 'goship-agent.service'" in postinst
    assert "deb-systemd-helper --quiet was-enabled 'goship-agent.service'" in postinst
    assert "deb-systemd-helper enable 'goship-agent.service'" in postinst
    assert 'systemctl --system daemon-reload' in postinst
    assert "deb-systemd-invoke restart 'goship-agent.service'" in postinst
    assert "deb-systemd-invoke start 'goship-agent.service'" in postinst
    assert postinst.index('daemon-reload') < postinst.index('deb-systemd-invoke restart')
    assert "deb-systemd-invoke stop 'goship-agent.service'" in prerm
    assert '[ "$1" = remove ]' in prerm
    assert 'systemctl --system daemon-reload' in postrm
    assert "deb-systemd-helper purge 'goship-agent.service'" in postrm
    assert "deb-systemd-helper unmask 'goship-agent.service'" in postrm


def test_snippet_variants():
    snippets = debian_scripts.systemd_snippets([SystemdUnit('b.service', enable=False, start=False),
                                                SystemdUnit('a.service', restart_on_upgrade=False)])
    postinst, prerm = snippets['postinst'], snippets['prerm']
    # enable=False: only re-enable units that were enabled before.
    assert "deb-systemd-helper debian-installed 'b.service'" in postinst
    assert "deb-systemd-helper enable 'a.service'" in postinst
    # start=False + restart_on_upgrade: try-restart on upgrade, nothing on first install.
    assert "deb-systemd-invoke try-restart 'b.service'" in postinst
    assert "deb-systemd-invoke start 'a.service'" in postinst
    assert "invoke start 'b.service'" not in postinst
    # restart_on_upgrade=False: stopped in prerm on every call, started again by postinst.
    assert "\tdeb-systemd-invoke stop 'a.service'" in prerm
    assert "deb-systemd-invoke stop 'b.service'" in prerm
    for text in snippets.values():
        assert sh_syntax_ok(text) == (True, '')
    assert debian_scripts.systemd_snippets([]) == {}


def test_socket_left_alone_on_upgrade():
    # restart_on_upgrade=False + stop_on_upgrade=False (debhelper --no-stop-on-upgrade): started on
    # first install, stopped on remove, never stopped or started around an upgrade. The service
    # behind it is restarted, so the listening socket keeps its port open throughout.
    snippets = debian_scripts.systemd_snippets([SystemdUnit('s.socket', restart_on_upgrade=False, stop_on_upgrade=False),
                                                SystemdUnit('s.service')])
    postinst, prerm = snippets['postinst'], snippets['prerm']
    upgrade = postinst.split('if [ -n "$2" ]; then', 1)[1].split('else', 1)[0]
    fresh = postinst.split('if [ -n "$2" ]; then', 1)[1].split('else', 1)[1].split('fi', 1)[0]
    assert "deb-systemd-invoke restart 's.service'" in upgrade
    assert 's.socket' not in upgrade
    assert "deb-systemd-invoke start 's.service' 's.socket'" in fresh
    # prerm stops the socket on remove only, never on upgrade.
    assert "\t\tdeb-systemd-invoke stop 's.service' 's.socket'" in prerm
    assert prerm.count('s.socket') == 1
    for text in snippets.values():
        assert sh_syntax_ok(text) == (True, '')
    spec = dp.PackageSpec.from_dict({
        'name': 'p', 'version': '1', 'maintainer': 'm <m@example.invalid>', 'description': 'd',
        'systemd_units': [{'name': 'x.socket', 'stop_on_upgrade': 'no'}]})
    assert any('x.socket: stop_on_upgrade must be a boolean' in p for p in dp.validate(spec))


def test_script_assembly_debhelper_placement():
    snip = '# SNIPPET'
    # Body without token: after the body for postinst, before it for prerm/postrm.
    assert debian_scripts.assemble_script('postinst', 'echo user', snip) == '#!/bin/sh\nset -e\n\necho user\n\n# SNIPPET\n'
    assert debian_scripts.assemble_script('prerm', 'echo user\n', snip) == '#!/bin/sh\nset -e\n\n# SNIPPET\n\necho user\n'
    assert debian_scripts.assemble_script('postrm', 'echo user', snip) == '#!/bin/sh\nset -e\n\n# SNIPPET\n\necho user\n'
    # Body with the token: snippet goes exactly there.
    assert debian_scripts.assemble_script('postinst', 'a\n#DEBHELPER#\nb\n', snip) == '#!/bin/sh\nset -e\n\na\n# SNIPPET\nb\n'
    # Complete script: kept, token replaced (or removed).
    full = '#!/bin/bash\nset -eu\n#DEBHELPER#\nexit 0\n'
    assert debian_scripts.assemble_script('prerm', full, snip) == '#!/bin/bash\nset -eu\n# SNIPPET\nexit 0\n'
    assert debian_scripts.assemble_script('prerm', full, None) == '#!/bin/bash\nset -eu\n\nexit 0\n'
    with pytest.raises(PackageValidationError):
        debian_scripts.assemble_script('prerm', '#!/bin/sh\necho\n', snip)
    # No user script: generated only when there is a snippet.
    assert debian_scripts.assemble_script('preinst', None, None) is None
    assert debian_scripts.assemble_script('postrm', None, snip) == '#!/bin/sh\nset -e\n\n# SNIPPET\n'
    assert debian_scripts.assemble_script('preinst', 'echo pre', None) == '#!/bin/sh\nset -e\n\necho pre\n'


def test_user_scripts_in_package(srcdir):
    spec = with_unit(srcdir, scripts={
        'preinst': 'echo preinst',
        'postinst': 'echo configured',
        'prerm': '#!/bin/sh\nset -e\necho before\n#DEBHELPER#\necho after\n',
        'postrm': 'echo removed',
    })
    scripts = dp.build_package(spec, environ={}).scripts
    assert scripts['preinst'] == '#!/bin/sh\nset -e\n\necho preinst\n'
    assert scripts['postinst'].index('echo configured') < scripts['postinst'].index('deb-systemd-helper')
    assert scripts['postrm'].index('deb-systemd-helper purge') < scripts['postrm'].index('echo removed')
    prerm = scripts['prerm']
    assert prerm.index('echo before') < prerm.index('deb-systemd-invoke stop') < prerm.index('echo after')
    assert '#DEBHELPER#' not in prerm
    for text in scripts.values():
        assert sh_syntax_ok(text) == (True, '')


STUB = '#!/bin/sh\necho "$(basename "$0") $*" >> "$STUB_LOG"\n[ "$2" != was-enabled ] || exit "${WAS_ENABLED_RC:-0}"\nexit 0\n'


@pytest.fixture
def stub_env(tmp_path):
    """PATH with logging stubs of deb-systemd-helper, deb-systemd-invoke and systemctl."""
    bindir = tmp_path / 'stubs'
    bindir.mkdir()
    for name in ('deb-systemd-helper', 'deb-systemd-invoke', 'systemctl'):
        (bindir / name).write_text(STUB)
        (bindir / name).chmod(0o755)
    rundir = tmp_path / 'run-systemd-system'
    rundir.mkdir()
    log = tmp_path / 'log'

    def execute(script, *args, was_enabled=0, systemd_running=True):
        # Point the generated checks at test locations instead of the host's.
        script = script.replace('/run/systemd/system', str(rundir if systemd_running else tmp_path / 'absent'))
        script = script.replace('/usr/bin/deb-systemd-helper', str(bindir / 'deb-systemd-helper'))
        log.write_text('')
        env = dict(os.environ, PATH='%s:/usr/bin:/bin' % bindir, STUB_LOG=str(log),
                   WAS_ENABLED_RC=str(was_enabled))
        env.pop('DPKG_ROOT', None)
        subprocess.run(['sh', '-c', script, 'script'] + list(args), check=True, env=env)
        return log.read_text().splitlines()

    return execute


def test_generated_scripts_behave_like_debhelper(srcdir, stub_env):
    scripts = dp.build_package(with_unit(srcdir), environ={}).scripts
    unit = 'goship-agent.service'
    assert stub_env(scripts['postinst'], 'configure') == [
        'deb-systemd-helper unmask %s' % unit,
        'deb-systemd-helper --quiet was-enabled %s' % unit,
        'deb-systemd-helper enable %s' % unit,
        'systemctl --system daemon-reload',
        'deb-systemd-invoke start %s' % unit,
    ]
    # Upgrade of a unit the administrator disabled: state updated, not re-enabled; restarted.
    assert stub_env(scripts['postinst'], 'configure', '1.213-1', was_enabled=1) == [
        'deb-systemd-helper unmask %s' % unit,
        'deb-systemd-helper --quiet was-enabled %s' % unit,
        'deb-systemd-helper update-state %s' % unit,
        'systemctl --system daemon-reload',
        'deb-systemd-invoke restart %s' % unit,
    ]
    # Without systemd running, only the enable bookkeeping happens.
    assert stub_env(scripts['postinst'], 'configure', systemd_running=False)[-1] == \
        'deb-systemd-helper enable %s' % unit
    assert stub_env(scripts['prerm'], 'remove') == ['deb-systemd-invoke stop %s' % unit]
    assert stub_env(scripts['prerm'], 'upgrade', '1.215-1') == []
    assert stub_env(scripts['postrm'], 'remove') == ['systemctl --system daemon-reload']
    assert stub_env(scripts['postrm'], 'purge') == ['deb-systemd-helper purge %s' % unit,
                                                    'deb-systemd-helper unmask %s' % unit]
    assert stub_env(scripts['postrm'], 'upgrade', '1.215-1') == []


@pytest.mark.skipif(DPKG is None, reason='dpkg not installed')
def test_dpkg_installs_verifies_and_purges_in_scratch_root(srcdir, tmp_path):
    """Install into a throwaway --root (no systemd units: nothing on the host is touched)."""
    root = tmp_path / 'root'
    (root / 'var/lib/dpkg/updates').mkdir(parents=True)
    (root / 'var/lib/dpkg/info').mkdir()
    (root / 'var/lib/dpkg/status').write_text('')
    marker = tmp_path / 'postinst-ran'
    spec = make_spec(srcdir, depends=[], scripts={'postinst': 'echo "$1" > %s' % marker})
    deb = write_deb(tmp_path, dp.build(spec, environ={}))
    dpkg = [DPKG, '--root=%s' % root, '--force-not-root', '--force-script-chrootless', '--force-bad-path',
            '--log=/dev/null']
    run(*dpkg, '--install', deb)
    assert marker.read_text() == 'configure\n'
    assert (root / 'usr/bin/goship-agent').read_bytes() == (srcdir / 'agent').read_bytes()
    assert (root / 'var/lib/dpkg/info/goship-agent.conffiles').read_text() == '/etc/goship/agent.yml\n'
    run(*dpkg, '--verify', 'goship-agent')   # checks files against md5sums; fails on mismatch
    run(*dpkg, '--purge', 'goship-agent')
    assert not (root / 'usr/bin/goship-agent').exists()
    assert not (root / 'etc/goship/agent.yml').exists()
