#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deb_build
short_description: Build a Debian package (.deb) in pure Python
version_added: "0.1.0"
author: goship.deploy maintainers (@goship)
description:
  - Builds a Debian binary package from files on the host running the module
    (usually the controller, using C(delegate_to=localhost)) without C(dpkg-deb).
    The C(ar), C(tar) and C(gzip) members are written with the Python standard library,
    so it also works on macOS.
  - The output is reproducible. Every timestamp is O(mtime), owners default to root/root,
    archive entries are sorted and the gzip headers carry no name or time, so the same
    inputs give byte-identical packages on every run and machine.
  - The package is computed in memory and compared with the existing O(dest). When the
    bytes are identical nothing is written and the file is not touched (its mtime stays).
    Otherwise it is written atomically (temporary file in the same directory, then rename).
  - Parent directories of O(files) are added automatically (mode C(0755), root/root).
    C(md5sums) is generated for all files; files under C(/etc) become conffiles unless
    O(conffiles) is given.
  - O(systemd_units) adds maintainer-script snippets like C(dh_installsystemd) does
    (C(deb-systemd-helper), C(deb-systemd-invoke)). How they are combined with O(scripts)
    is described there.
  - All validation problems are reported at once, in one failure message, and nothing is
    written.
options:
  dest:
    description:
      - Path of the C(.deb) file to write. Its directory must exist.
    type: path
    required: true
  mode:
    description:
      - Permissions of O(dest), as an octal string such as V('0644').
      - When the package bytes are unchanged but the mode differs, only the mode is fixed
        (the file is not rewritten) and the task reports a change.
    type: raw
    default: '0644'
  name:
    description:
      - Package name. Debian policy applies, so at least 2 characters from lowercase
        letters, digits, V(+), V(-) and V(.), starting with a letter or digit.
    type: str
    required: true
  version:
    description:
      - Debian version C([epoch:]upstream[-revision]), for example V(1.214), V(1.214-1)
        or V(2:1.0~rc1). The upstream part must start with a digit.
      - Quote it in YAML. An unquoted V(1.10) is read as the number 1.1.
    type: str
    required: true
  architecture:
    description:
      - Debian architecture (V(amd64), V(arm64), V(armhf), V(i386), V(ppc64el), V(s390x),
        V(riscv64), V(all)) or a Go C(GOARCH) name, which is mapped (V(arm) to V(armhf),
        V(386) to V(i386), V(ppc64le) to V(ppc64el)).
    type: str
    default: amd64
  maintainer:
    description:
      - Maintainer, as C(Name <email>).
    type: str
    required: true
  description:
    description:
      - Package description. The first line is the synopsis. Any further lines become the
        extended description, and empty lines in it are written as C( .).
    type: str
    required: true
  section:
    description:
      - Archive section. The control file gets V(misc) when it is not set.
    type: str
  priority:
    description:
      - Package priority. The control file gets V(optional) when it is not set.
    type: str
    choices: [required, important, standard, optional, extra]
  homepage:
    description:
      - Upstream homepage URL.
    type: str
  depends:
    description:
      - C(Depends) relationships, one per item, for example V(libc6 (>= 2.34)) or V(a | b).
    type: list
    elements: str
  pre_depends:
    description:
      - C(Pre-Depends) relationships, one per item.
    type: list
    elements: str
  recommends:
    description:
      - C(Recommends) relationships, one per item.
    type: list
    elements: str
  suggests:
    description:
      - C(Suggests) relationships, one per item.
    type: list
    elements: str
  conflicts:
    description:
      - C(Conflicts) relationships, one per item.
    type: list
    elements: str
  breaks:
    description:
      - C(Breaks) relationships, one per item.
    type: list
    elements: str
  replaces:
    description:
      - C(Replaces) relationships, one per item.
    type: list
    elements: str
  provides:
    description:
      - C(Provides) relationships, one per item.
    type: list
    elements: str
  files:
    description:
      - Regular files to package.
    type: list
    elements: dict
    default: []
    suboptions:
      src:
        description:
          - Source file on the host running the module. It must be a regular file.
        type: path
        required: true
      dest:
        description:
          - Absolute install path. It must not contain V(..), and two files cannot have the
            same path or be parents of each other.
        type: str
        required: true
      mode:
        description:
          - Mode as an octal string, for example V('0755'). An integer is taken as the
            numeric mode.
        type: raw
        default: '0644'
      owner:
        description:
          - Owner name. dpkg resolves it on the target system and uses uid 0 when the name
            is unknown there. A numeric value is used as the uid.
        type: str
        default: root
      group:
        description:
          - Group name. It is resolved the same way as O(files[].owner).
        type: str
        default: root
  directories:
    description:
      - Extra directories to package, for example empty state directories, or parent
        directories that need another mode or owner.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description:
          - Absolute directory path.
        type: str
        required: true
      mode:
        description:
          - Mode as an octal string.
        type: raw
        default: '0755'
      owner:
        description:
          - Owner name.
        type: str
        default: root
      group:
        description:
          - Group name.
        type: str
        default: root
  conffiles:
    description:
      - Explicit list of conffiles, each one the O(files[].dest) of a packaged file.
      - When it is not set, every file under C(/etc) is a conffile. Set V([]) for no
        conffiles at all.
    type: list
    elements: str
  scripts:
    description:
      - Maintainer scripts. Each one is given either inline (C(content)) or as a file
        (C(src)).
      - "A script B(body) (no C(#!) line) gets C(#!/bin/sh) and C(set -e) prepended. If
        it contains a C(#DEBHELPER#) line, the generated systemd snippets go there.
        Otherwise they go where debhelper's templates put them: after the body in
        C(preinst)/C(postinst), before the body in C(prerm)/C(postrm)."
      - "A B(complete) script (starting with C(#!)) is kept unchanged, except that its
        C(#DEBHELPER#) token is replaced by the snippets (or removed). If snippets exist
        for that script and the token is missing, the module fails, because debhelper
        would silently drop them."
      - Scripts are installed with mode C(0755).
    type: dict
    suboptions:
      preinst:
        description: The C(preinst) script.
        type: dict
        suboptions:
          content:
            description:
              - Script text. Mutually exclusive with C(src).
            type: str
          src:
            description:
              - File with the script text. Mutually exclusive with C(content).
            type: path
      postinst:
        description: The C(postinst) script.
        type: dict
        suboptions:
          content:
            description:
              - Script text. Mutually exclusive with C(src).
            type: str
          src:
            description:
              - File with the script text. Mutually exclusive with C(content).
            type: path
      prerm:
        description: The C(prerm) script.
        type: dict
        suboptions:
          content:
            description:
              - Script text. Mutually exclusive with C(src).
            type: str
          src:
            description:
              - File with the script text. Mutually exclusive with C(content).
            type: path
      postrm:
        description: The C(postrm) script.
        type: dict
        suboptions:
          content:
            description:
              - Script text. Mutually exclusive with C(src).
            type: str
          src:
            description:
              - File with the script text. Mutually exclusive with C(content).
            type: path
  systemd_units:
    description:
      - systemd units shipped in O(files) (with dest under C(/lib/systemd/system) or
        C(/usr/lib/systemd/system)) that get maintainer-script snippets like
        C(dh_installsystemd). In C(postinst) the unit is unmasked, enabled, the systemd
        daemon is reloaded and the unit is started or restarted. C(prerm) stops the unit on
        removal. C(postrm) reloads systemd on removal and purges the unit's state on purge.
      - The start, stop and restart steps only run when C(/run/systemd/system) exists.
      - The snippets call C(deb-systemd-helper) from C(init-system-helpers). Add it to
        O(depends) if the target systems might not have it.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - Unit file name, for example V(goship-agent.service). Template units
            (C(foo@.service)) are not accepted.
        type: str
        required: true
      enable:
        description:
          - Enable the unit on first install and keep an administrator's choice on
            upgrades (C(deb-systemd-helper was-enabled)). When V(false), only a unit that
            was enabled before is refreshed.
        type: bool
        default: true
      start:
        description:
          - Start the unit on install.
        type: bool
        default: true
      restart_on_upgrade:
        description:
          - Restart the unit after an upgrade instead of stopping it in C(prerm) and
            starting it in C(postinst). Without O(systemd_units[].start) this uses
            C(try-restart), so only a running unit is restarted.
        type: bool
        default: true
      stop_on_upgrade:
        description:
          - With O(systemd_units[].restart_on_upgrade=false), V(false) leaves the unit
            alone during an upgrade (not stopped in C(prerm), not started in
            C(postinst)), like debhelper's C(--no-stop-on-upgrade). Use it for a
            C(.socket) unit, so the listening port stays open while the service behind it
            is restarted.
          - Ignored when O(systemd_units[].restart_on_upgrade=true).
        type: bool
        default: true
  verify_units:
    description:
      - When C(systemd-analyze) is on the PATH, check each O(systemd_units) file with
        C(systemd-analyze verify), using copies in a temporary directory. A failure is a
        validation error and its output is shown.
      - Missing executables are not reported, because the host building the package is not
        the target. Warnings such as unknown keys are returned as module warnings.
      - When the tool is missing, or cannot work on this host, the check is skipped and
        RV(units_verified) is V(false).
    type: bool
    default: true
  mtime:
    description:
      - Timestamp in seconds since the epoch, used for every archive member.
      - When it is not set, the module uses E(SOURCE_DATE_EPOCH) from the module's
        environment, or 0 when that is unset. Use the C(environment) task keyword to pass
        it.
    type: int
attributes:
  check_mode:
    support: full
    description: Builds the package in memory and reports whether O(dest) would change, and the would-be RV(sha256). Writes nothing.
  diff_mode:
    support: full
    description: Shows the old and new C(control) files. The old one is read from the existing O(dest) if that parses as a package.
  platform:
    support: full
    platforms: posix
    description: Pure Python. C(dpkg) is not needed.
notes:
  - Only regular files and directories are supported (no symlinks, hardlinks or device nodes).
  - C(Installed-Size) is calculated like C(dpkg-gencontrol) does it. Each file counts as
    ceil(size/1024) KiB and each directory, the root included, counts as 1 KiB.
  - The gzip output comes from the Python C(zlib) module. Different zlib builds could in
    theory compress differently. In practice the output is stable across CPython builds
    that use the system zlib.
seealso:
  - name: dh_installsystemd(1)
    description: The debhelper tool whose maintainer-script snippets this module generates.
    link: https://manpages.debian.org/dh_installsystemd
  - name: deb-systemd-helper(1)
    description: Helper used by the generated snippets.
    link: https://manpages.debian.org/deb-systemd-helper
"""

EXAMPLES = r"""
- name: Build the agent package on the controller
  goship.deploy.deb_build:
    dest: "{{ playbook_dir }}/dist/goship-agent_{{ agent_version }}-1_{{ goarch }}.deb"
    name: goship-agent
    version: "{{ agent_version }}-1"
    architecture: "{{ goarch }}"          # arm64, arm (-> armhf), 386 (-> i386), ...
    maintainer: "Ops Team <ops@example.com>"
    description: |
      goship deployment agent
      Long description, wrapped freely.

      A second paragraph.
    homepage: https://example.com/goship
    depends:
      - "libc6 (>= 2.34)"
      - "adduser"
    files:
      - src: build/goship-agent
        dest: /usr/bin/goship-agent
        mode: "0755"
      - src: files/agent.yml
        dest: /etc/goship/agent.yml      # automatically a conffile
        mode: "0640"
      - src: files/goship-agent.service
        dest: /lib/systemd/system/goship-agent.service
    directories:
      - path: /var/lib/goship
        mode: "0750"
    scripts:
      postinst:
        content: |
          if [ "$1" = configure ]; then
            adduser --system --group --home /var/lib/goship goship >/dev/null
            chown goship:goship /var/lib/goship
          fi
          # (systemd snippets are appended here automatically)
    systemd_units:
      - name: goship-agent.service
    mtime: 1700000000
  delegate_to: localhost
  run_once: true

- name: "Complete script with its own shebang; snippets go at the #DEBHELPER# token"
  goship.deploy.deb_build:
    dest: /tmp/demo_1.0_all.deb
    name: demo
    version: "1.0"
    architecture: all
    maintainer: "Jane Doe <jane@example.com>"
    description: Demo service
    files:
      - src: files/demo.service
        dest: /lib/systemd/system/demo.service
    scripts:
      prerm:
        src: files/demo.prerm       # starts with "#!/bin/sh" and contains "#DEBHELPER#"
    systemd_units:
      - name: demo.service
        start: false
  delegate_to: localhost

- name: Reproducible build from SOURCE_DATE_EPOCH
  goship.deploy.deb_build:
    dest: /tmp/tool_2.0-1_amd64.deb
    name: tool
    version: "2:2.0-1"
    maintainer: "Jane Doe <jane@example.com>"
    description: A tool
    files:
      - src: build/tool
        dest: /usr/bin/tool
        mode: "0755"
  environment:
    SOURCE_DATE_EPOCH: "{{ lookup('pipe', 'git log -1 --format=%ct') }}"
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: Path of the package file.
  returned: always
  type: str
  sample: /srv/dist/goship-agent_1.214-1_arm64.deb
sha256:
  description: SHA-256 of the package bytes. In check mode this is the checksum the file would have.
  returned: success
  type: str
  sample: 3f7a0c3e5bd1f2c4a9c7e1d1e7c1f6e2b8f1c3d6a7e9b0c1d2e3f4a5b6c7d8e9
size:
  description: Size of the package in bytes.
  returned: success
  type: int
  sample: 1652
package:
  description: Package name.
  returned: success
  type: str
  sample: goship-agent
version:
  description: Package version.
  returned: success
  type: str
  sample: 1.214-1
architecture:
  description: Debian architecture written to the control file, after mapping GOARCH names.
  returned: success
  type: str
  sample: armhf
contents:
  description: Entries of C(data.tar.gz), in archive order.
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: Path in the archive (C(./)-prefixed, with a trailing C(/) for directories).
      type: str
      sample: ./usr/bin/goship-agent
    type:
      description: V(file) or V(directory).
      type: str
      sample: file
    mode:
      description: Octal mode.
      type: str
      sample: "0755"
    size:
      description: Size in bytes (0 for directories).
      type: int
      sample: 5242880
    owner:
      description: Owner name.
      type: str
      sample: root
    group:
      description: Group name.
      type: str
      sample: root
control:
  description: Fields of the generated control file.
  returned: success
  type: dict
  sample:
    Package: goship-agent
    Version: 1.214-1
    Architecture: arm64
    Maintainer: Ops Team <ops@example.com>
    Installed-Size: "5133"
    Depends: libc6 (>= 2.34)
    Section: misc
    Priority: optional
    Description: "goship deployment agent"
conffiles:
  description: Conffiles recorded in the package.
  returned: success
  type: list
  elements: str
  sample: [/etc/goship/agent.yml]
scripts:
  description: Names of the maintainer scripts in the package.
  returned: success
  type: list
  elements: str
  sample: [postinst, postrm, prerm]
units_verified:
  description: Whether the O(systemd_units) files were checked with C(systemd-analyze verify).
  returned: success
  type: bool
  sample: false
"""

import os
import shutil
import tempfile
from typing import Any, Dict, Tuple

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.goship.deploy.plugins.module_utils.debian_format import read_control
from ansible_collections.goship.deploy.plugins.module_utils.debian_package import build_package
from ansible_collections.goship.deploy.plugins.module_utils.debian_spec import (
    SCRIPT_NAMES,
    SYSTEMD_UNIT_DIRS,
    BuiltPackage,
    PackageSpec,
    PackageValidationError,
    PackageWriteError,
    SourceReadError,
)
from ansible_collections.goship.deploy.plugins.module_utils.debian_validation import validate
from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError
from ansible_collections.goship.deploy.plugins.module_utils.file_ops import write_if_changed
from ansible_collections.goship.deploy.plugins.module_utils.reproducible import ReproducibleError, parse_mode

SCRIPT_SPEC = dict(
    type='dict',
    options=dict(content=dict(type='str'), src=dict(type='path')),
    mutually_exclusive=[('content', 'src')],
    required_one_of=[('content', 'src')],
)

ARGUMENT_SPEC = dict(
    dest=dict(type='path', required=True),
    mode=dict(type='raw', default='0644'),
    name=dict(type='str', required=True),
    version=dict(type='str', required=True),
    architecture=dict(type='str', default='amd64'),
    maintainer=dict(type='str', required=True),
    description=dict(type='str', required=True),
    section=dict(type='str'),
    priority=dict(type='str', choices=['required', 'important', 'standard', 'optional', 'extra']),
    homepage=dict(type='str'),
    depends=dict(type='list', elements='str'),
    pre_depends=dict(type='list', elements='str'),
    recommends=dict(type='list', elements='str'),
    suggests=dict(type='list', elements='str'),
    conflicts=dict(type='list', elements='str'),
    breaks=dict(type='list', elements='str'),
    replaces=dict(type='list', elements='str'),
    provides=dict(type='list', elements='str'),
    files=dict(type='list', elements='dict', default=[], options=dict(
        src=dict(type='path', required=True),
        dest=dict(type='str', required=True),
        mode=dict(type='raw', default='0644'),
        owner=dict(type='str', default='root'),
        group=dict(type='str', default='root'),
    )),
    directories=dict(type='list', elements='dict', default=[], options=dict(
        path=dict(type='str', required=True),
        mode=dict(type='raw', default='0755'),
        owner=dict(type='str', default='root'),
        group=dict(type='str', default='root'),
    )),
    conffiles=dict(type='list', elements='str'),
    scripts=dict(type='dict', options=dict((name, SCRIPT_SPEC) for name in SCRIPT_NAMES)),
    systemd_units=dict(type='list', elements='dict', default=[], options=dict(
        name=dict(type='str', required=True),
        enable=dict(type='bool', default=True),
        start=dict(type='bool', default=True),
        restart_on_upgrade=dict(type='bool', default=True),
        stop_on_upgrade=dict(type='bool', default=True),
    )),
    verify_units=dict(type='bool', default=True),
    mtime=dict(type='int'),
)


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8')
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else to_native(exc)
        raise SourceReadError(path, reason, what=what) from exc


def _load_scripts(params: Dict[str, Any]) -> Dict[str, str]:
    scripts = {}
    for name, value in (params['scripts'] or {}).items():
        if not value:
            continue
        if value.get('src'):
            scripts[name] = _read_text(value['src'], 'scripts.%s.src' % name)
        elif value.get('content') is not None:
            scripts[name] = value['content']
    return scripts


def _verify_units(module, spec):
    """Run ``systemd-analyze verify`` on copies of the unit files.

    Returns ``(verified, problems, warnings)``.  ``verified`` is False when the
    tool is missing or unusable on this host (not an error).
    """
    if not spec.systemd_units:
        return False, [], []
    tool = module.get_bin_path('systemd-analyze')
    if not tool:
        return False, [], []
    tmpdir = tempfile.mkdtemp(prefix='deb_build_units_')
    try:
        # Probe: if even a trivial unit cannot be verified, the tool cannot work here.
        probe = os.path.join(tmpdir, 'probe', 'deb-build-probe.service')
        os.mkdir(os.path.dirname(probe))
        with open(probe, 'w') as handle:
            handle.write('[Unit]\nDescription=probe\n[Service]\nType=oneshot\nExecStart=/bin/sh -c true\n')
        rc, _out, _err = module.run_command([tool, 'verify', '--man=no', probe])
        if rc != 0:
            return False, [], []

        unit_dir = os.path.join(tmpdir, 'units')
        os.mkdir(unit_dir)
        # Copy every unit file of the package so units can refer to each other.
        for entry in spec.files:
            if os.path.dirname(os.path.normpath(entry.dest)) in SYSTEMD_UNIT_DIRS:
                shutil.copyfile(entry.src, os.path.join(unit_dir, os.path.basename(entry.dest)))
        problems, warnings = [], []
        for unit in sorted(spec.systemd_units, key=lambda u: u.name):
            path = os.path.join(unit_dir, unit.name)
            rc, out, err = module.run_command([tool, 'verify', '--man=no', path], cwd=unit_dir)
            lines = [line.strip() for line in (err + out).splitlines() if line.strip()]
            # The host building the package is not the target: missing binaries are expected.
            relevant = [line for line in lines if 'is not executable: No such file or directory' not in line]
            notices = [line.replace(unit_dir + '/', '') for line in relevant]
            fatal = [line for line in notices if not _is_warning(line)]
            if rc != 0 and fatal:
                problems.append('systemd-analyze verify %s failed: %s' % (unit.name, ' | '.join(notices)))
            else:
                warnings += ['systemd-analyze verify %s: %s' % (unit.name, line) for line in notices]
        return True, problems, warnings
    except OSError as exc:
        module.warn('skipping systemd-analyze verify: %s' % to_native(exc))
        return False, [], []
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _is_warning(line):
    # systemd reports settings it skips as "..., ignoring" / "..., ignoring: value".
    return ', ignoring' in line or line.endswith('ignoring.')


def _checked_spec(module: AnsibleModule, result: Dict[str, Any]) -> Tuple[PackageSpec, int]:
    """The spec and the file mode of dest, once every check passed; else PackageValidationError
    listing all problems (the options, the spec, then systemd-analyze's)."""
    params = module.params
    problems = []
    try:
        file_mode = parse_mode(params['mode'], 0o644)
    except ReproducibleError as exc:
        file_mode = 0o644
        problems.append('mode: %s' % exc)

    data = dict(params)
    data['scripts'] = _load_scripts(params)
    spec = PackageSpec.from_dict(data)
    problems += validate(spec)

    if not problems and params['verify_units']:
        verified, unit_problems, warnings = _verify_units(module, spec)
        result['units_verified'] = verified
        problems += unit_problems
        for warning in warnings:
            module.warn(warning)
    if problems:
        raise PackageValidationError(problems)
    return spec, file_mode


def _write(module: AnsibleModule, dest: str, built: BuiltPackage, file_mode: int) -> Tuple[bool, str]:
    """Write dest unless it holds these bytes; return (changed, control text before, for diff)."""
    directory = os.path.dirname(dest) or '.'
    if not os.path.isdir(directory):
        raise PackageWriteError(dest, 'directory %s does not exist' % directory)
    # Same bytes: not rewritten (inode and mtime kept), a wrong mode alone is fixed.
    before = ''
    try:
        if module._diff and os.path.isfile(dest):
            with open(dest, 'rb') as handle:
                before = read_control(handle.read()) or ''
        changed = write_if_changed(dest, built.data, file_mode, check_mode=module.check_mode)
    except OSError as exc:
        raise PackageWriteError(dest, exc.strerror or to_native(exc)) from exc
    return changed, before


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    dest = module.params['dest']
    result = dict(changed=False, path=dest, units_verified=False)
    try:
        spec, file_mode = _checked_spec(module, result)
        built = build_package(spec)
        changed, before = _write(module, dest, built, file_mode)
    except GoshipError as exc:   # everything the packaging raises: one clear message, nothing written
        module.fail_json(**dict(result, **exc.result()))

    result.update(
        changed=changed,
        sha256=built.sha256,
        size=len(built.data),
        package=spec.name,
        version=spec.version,
        architecture=built.control['Architecture'],
        contents=built.contents,
        control=built.control,
        conffiles=built.conffiles,
        scripts=sorted(built.scripts),
    )
    if module._diff:
        result['diff'] = dict(before=before, after=built.control_text,
                              before_header='%s (control)' % dest, after_header='%s (control)' % dest)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
