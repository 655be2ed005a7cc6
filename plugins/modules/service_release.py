#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: service_release
short_description: Release a packaged service on one host in one step, behind a health gate, with rollback
version_added: "0.2.0"
author: goship.deploy maintainers (@goship)
description:
  - Runs on the host. Everything one host's upgrade needs happens in this one call, so a rollout
    costs one task per host instead of dozens; the time of each phase is returned for the deploy
    report.
  - "O(state=checked): reads the installed version, the unit, the cached package and (when
    everything else matches) one probe of the health gate, and says whether a release is needed
    (RV(needs_release), RV(reasons)) and whether the package is already cached and verified
    (RV(cached)). Changes nothing."
  - "O(state=deployed): when a release is needed, verifies the cached package (SHA-256 and its
    name and version), creates the account and directories, writes O(files) (a unit file change
    triggers C(daemon-reload)), installs the package with dpkg, restarts the unit unless the
    package's scripts already did, and runs the health gate. On failure it puts back the previous
    files and the previous release from the host cache, checks that release's health, and fails
    with the unit's state, restart count and journal tail. A host whose last release of this
    version failed is never reported as unchanged."
  - "O(state=absent): removes the service and what it made: stops and disables its units, purges
    the package, removes O(remove) (the files a release wrote) and the O(directories), then the
    O(user) and O(group). O(version) is not needed. Drain the host first: the service stops."
  - A host that already runs O(version) with the same files and passes the gate is left alone
    (no drain, no restart).
  - The package is expected in O(cache_dir) as C(<package_name>_<version>_<arch>.deb), with the
    verified SHA-256 either given as O(sha256) or recorded beside it as C(<deb>.sha256).
options:
  state:
    description:
      - C(checked) and C(deployed) as in the description.
      - "C(migrated): verifies the cached package, unpacks it (nothing is installed) and applies
        its pending SQL migrations from O(migrations_dir), each file in its own transaction with
        its row in O(migrations_table), under an advisory lock (the runner the CodeDeploy bundle
        ships). A package without that directory has no migrations. Nothing is restarted.
        Needs C(psql) on the host. In check mode it lists the pending files (RV(pending)) in a
        read-only session: no table is created, no lock taken."
    type: str
    choices: [checked, deployed, migrated, absent]
    default: deployed
  name:
    description: The service; its unit is C(<name>.service).
    type: str
    required: true
  version:
    description:
      - The release to run, a Debian version string (the collection's one version rule).
      - Required unless O(state=absent).
    type: str
  package_name:
    description: The Debian package, when it differs from O(name).
    type: str
  arch:
    description: The package architecture (Debian name).
    type: str
    default: amd64
  cache_dir:
    description: The host cache of packages (rollback targets) and of the last outcome (C(release.json)).
    type: path
    required: true
  cache_keep:
    description: Packages kept in the cache after a release (the installed one and the one before always stay).
    type: int
    default: 3
  sha256:
    description: The SHA-256 the cached package must have; empty uses the one recorded when it was staged.
    type: str
    default: ""
  files:
    description:
      - Files of the service written before the restart and put back on rollback (environment
        files, the unit rendered on the controller). Their content is compared byte for byte.
    type: list
    elements: dict
    default: []
    suboptions:
      path: {description: Absolute path., type: path, required: true}
      content: {description: The content., type: str, required: true}
      mode: {description: Octal mode., type: str, default: "0644"}
      owner: {description: Owner., type: str, default: root}
      group: {description: Group., type: str, default: root}
  remove:
    description:
      - Files removed before the restart (put back on rollback), such as a socket unit no longer wanted.
      - With O(state=absent), every file the releases wrote (units, environment files).
    type: list
    elements: path
    default: []
  secret_files:
    description: Like O(files), for content that must never be logged (mode 0600 by default).
    type: list
    elements: dict
    default: []
    suboptions:
      path: {description: Absolute path., type: path, required: true}
      content: {description: The content., type: str, required: true}
      mode: {description: Octal mode., type: str, default: "0600"}
      owner: {description: Owner., type: str, default: root}
      group: {description: Group., type: str, default: root}
  socket:
    description:
      - C(true) when the service is socket-activated (C(<name>.socket) is restarted when its file
        changes); C(false) makes sure no C(<name>.socket), packaged or not, holds the port (it is
        disabled and stopped); unset leaves sockets alone.
    type: bool
  user:
    description: System user the service runs as (created when missing); empty = none.
    type: str
    default: ""
  group:
    description: Its system group (created when missing).
    type: str
    default: ""
  directories:
    description:
      - Directories created with their owner and mode (state, logs).
      - With O(state=absent), the directories removed with their content (and O(cache_dir)).
    type: list
    elements: dict
    default: []
    suboptions:
      path: {description: Absolute path., type: path, required: true}
      owner: {description: Owner., type: str, default: root}
      group: {description: Group., type: str, default: root}
      mode: {description: Octal mode., type: str, default: "0755"}
  drain:
    description:
      - "How the host leaves rotation during the restart: C(none); C(consul) (maintenance mode on
        the local Consul agent, switched here); C(external) (the playbook drains before and
        undrains after this task; only the wording of failures depends on it)."
    type: str
    choices: [none, consul, external]
    default: none
  consul_url:
    description: The local Consul agent's HTTP address, for O(drain=consul).
    type: str
    default: http://127.0.0.1:8500
  health:
    description: The health gate. Without it the release is not gated (not recommended).
    type: dict
    suboptions:
      url: {description: Health URL; must answer 200., type: str, required: true}
      status_url: {description: Status URL that reports the running version., type: str, required: true}
      version_key: {description: JSON key of the version in the status body; empty = the plain body., type: str, default: version}
      require:
        description: Status JSON fields that must hold these values (for example C(Database=Good)).
        type: dict
        default: {}
      timeout: {description: Seconds for the gate to pass., type: float, default: 60}
      interval: {description: Seconds between probes., type: float, default: 1}
      stable: {description: Seconds the service must stay healthy without restarting after it first passed., type: float, default: 3}
  database:
    description: For O(state=migrated), the database. The password is never logged.
    type: dict
    suboptions:
      host: {description: Database host (required for O(state=migrated)., type: str}
      port: {description: Port., type: int, default: 5432}
      name: {description: Database name (required for O(state=migrated)., type: str}
      user: {description: User (required for O(state=migrated)., type: str}
      password: {description: Password; never logged., type: str}
      sslmode: {description: libpq sslmode., type: str, default: prefer}
  migrations_dir:
    description: Directory of the C(*.sql) migrations inside the package.
    type: str
  migrations_table:
    description: Table recording applied migrations.
    type: str
    default: goship_schema_migrations
  migrate_lock_wait:
    description: Seconds to wait for the migrations' advisory lock.
    type: int
    default: 300
  journal_lines:
    description: Journal lines of the unit returned (and quoted) when the release fails.
    type: int
    default: 20
  package_src:
    description:
      - "With O(state=checked): the package on the controller. When the host needs the release
        and its cache lacks a verified copy, it is copied over and moved into O(cache_dir) once
        its SHA-256 matches O(sha256) (needed with this option). The same call then reports
        RV(cached) true and RV(staged) true."
      - An empty string means the release comes from host caches only (S3 unreachable); a host
        that needs it and does not have it cached fails, with nothing changed.
      - Handled by the action plugin on the controller.
    type: path
  haproxy:
    description:
      - "With O(state=deployed): drain the host from an HAProxy backend before the release and
        put it back after (when it serves a good release, or when nothing was changed), through
        HAProxy's runtime API from the controller; the seconds are returned as the C(drain) and
        C(undrain) phases. The host stays drained when the release failed and could not be
        rolled back. Implies O(drain=external)."
      - "With O(state=checked): a host that needs nothing else but is in maintenance in that
        backend (left drained by an interrupted rollout) is reported as needing the release
        (RV(reasons) says so), so that the release call puts it back."
      - Handled by the action plugin on the controller.
    type: dict
    suboptions:
      socket:
        description: The admin socket, as seen from the controller, a Unix socket path or C(HOST:PORT) (C(stats socket ... level admin)).
        type: str
        required: true
      backend: {description: The backend., type: str, required: true}
      server: {description: The host's server name in that backend., type: str, required: true}
      timeout:
        description: Seconds to wait until HAProxy reports the server drained (no sessions left) or up again.
        type: float
        default: 30
  stage_from:
    description:
      - With O(state=checked), a package file already on the host to move into the cache (the
        action plugin sets it after copying O(package_src)); its SHA-256 must be O(sha256).
    type: path
attributes:
  action:
    support: full
    description: The copy of O(package_src) and the HAProxy drain run on the controller.
  check_mode:
    support: full
    description: >-
      O(state=deployed) reports what it would do; nothing is written, installed, copied, drained or restarted.
      O(state=migrated) lists the pending migrations without applying them.
  diff_mode:
    support: none
    description: Not supported; RV(reasons) says what differs.
notes:
  - Needs root, dpkg and systemd on the host; Python's standard library only.
seealso:
  - module: goship.deploy.s3_artifact
"""

EXAMPLES = r"""
- name: Release hello-svc 1.214 on this host (package staged in the cache beforehand)
  goship.deploy.service_release:
    name: hello-svc
    version: "1.214"
    cache_dir: /var/cache/goship/hello-svc
    sha256: "{{ artifact_sha256 }}"
    socket: true
    user: hello-svc
    group: hello-svc
    health:
      url: http://127.0.0.1:8080/healthz
      status_url: http://127.0.0.1:8080/status
      require:
        Database: Good
  register: release

- name: Is a release needed here?
  goship.deploy.service_release:
    state: checked
    name: hello-svc
    version: "1.214"
    cache_dir: /var/cache/goship/hello-svc
  register: look

- name: Remove hello-svc and everything its releases made (its state directory too)
  goship.deploy.service_release:
    state: absent
    name: hello-svc
    cache_dir: /var/cache/goship/hello-svc
    remove: [/etc/systemd/system/hello-svc.service, /etc/systemd/system/hello-svc.socket]
    directories: [{path: /etc/hello-svc}, {path: /var/lib/hello-svc}]
    user: hello-svc
    group: hello-svc
"""

RETURN = r"""
outcome:
  description:
    - upgraded, restarted (same version, new files or a stopped unit), unchanged, rolled_back or failed;
      unreachable when the host could not be reached (added by the action plugin).
  returned: state=deployed
  type: str
  sample: upgraded
name:
  description: The service (O(name)); with the next three, the host's line of a rollout report.
  returned: state=deployed
  type: str
version:
  description: The release (O(version)).
  returned: state=deployed
  type: str
duration_s:
  description: Seconds of all phases, rounded to 0.1.
  returned: state=deployed
  type: float
message:
  description: The call's message (why it failed, when it did).
  returned: state=deployed
  type: str
version_before:
  description: The version installed before; empty when none was.
  returned: state=checked or state=deployed
  type: str
version_after:
  description: The version installed afterwards.
  returned: state=deployed
  type: str
needs_release:
  description: Whether the host needs the release.
  returned: state=checked
  type: bool
reasons:
  description: Why a release is needed (empty when it is not).
  returned: state=checked or state=deployed
  type: list
  elements: str
cached:
  description: Whether the package of O(version) is in the host cache with a verified SHA-256.
  returned: state=checked
  type: bool
staged:
  description: Whether this call copied the package into the host cache (O(package_src)).
  returned: state=checked
  type: bool
health:
  description: The last health gate observation.
  returned: when the gate ran
  type: str
  sample: healthy, version 1.214
phases:
  description: Seconds spent per phase (check, prepare, drain, configure, install, restart, gate, rollback, ...).
  returned: unless state=absent
  type: dict
unit_state:
  description:
    - On failure, the unit's active state, restart count and result, its journal tail (C(journal), systemd's lines
      and the service's) and the service's own last lines (C(output), quoted in the message).
  returned: on failure
  type: dict
applied:
  description: The migration files applied by O(state=migrated), in order.
  returned: state=migrated
  type: list
  elements: str
removed:
  description: What O(state=absent) removed (or would remove, in check mode), in order; empty when nothing was left.
  returned: state=absent
  type: list
  elements: str
  sample: [stop hello-svc.service, purge package hello-svc, /etc/hello-svc, user hello-svc, group hello-svc]
pending:
  description: The migration files not applied yet, in order (O(state=migrated) in check mode).
  returned: state=migrated
  type: list
  elements: str
pruned:
  description: Packages removed from the cache.
  returned: after a successful release
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError
from ansible_collections.goship.deploy.plugins.module_utils.service_release import Gate, Host, Release, Request
from ansible_collections.goship.deploy.plugins.module_utils.service_removal import Removal, remove
from ansible_collections.goship.deploy.plugins.module_utils.version import version_problems

_FILE = dict(path=dict(type='path', required=True), content=dict(type='str', required=True),
             mode=dict(type='str', default='0644'), owner=dict(type='str', default='root'),
             group=dict(type='str', default='root'))
_SECRET_FILE = dict(_FILE, content=dict(type='str', required=True, no_log=True), mode=dict(type='str', default='0600'))

ARGUMENT_SPEC = dict(
    state=dict(type='str', choices=['checked', 'deployed', 'migrated', 'absent'], default='deployed'),
    name=dict(type='str', required=True),
    version=dict(type='str'),
    package_name=dict(type='str'),
    arch=dict(type='str', default='amd64'),
    cache_dir=dict(type='path', required=True),
    cache_keep=dict(type='int', default=3),
    sha256=dict(type='str', default=''),
    files=dict(type='list', elements='dict', default=[], options=_FILE),
    secret_files=dict(type='list', elements='dict', default=[], options=_SECRET_FILE, no_log=True),
    remove=dict(type='list', elements='path', default=[]),
    socket=dict(type='bool'),
    user=dict(type='str', default=''),
    group=dict(type='str', default=''),
    directories=dict(type='list', elements='dict', default=[], options=dict(
        path=dict(type='path', required=True), owner=dict(type='str', default='root'),
        group=dict(type='str', default='root'), mode=dict(type='str', default='0755'))),
    drain=dict(type='str', choices=['none', 'consul', 'external'], default='none'),
    consul_url=dict(type='str', default='http://127.0.0.1:8500'),
    health=dict(type='dict', options=dict(
        url=dict(type='str', required=True), status_url=dict(type='str', required=True),
        version_key=dict(type='str', default='version', no_log=False), require=dict(type='dict', default={}),
        timeout=dict(type='float', default=60), interval=dict(type='float', default=1),
        stable=dict(type='float', default=3))),
    journal_lines=dict(type='int', default=20),
    # Only the password is secret: masking every value would hide the service's name in messages
    # wherever it equals the database name or user.
    database=dict(type='dict', options=dict(
        host=dict(type='str'), port=dict(type='int', default=5432), name=dict(type='str'), user=dict(type='str'),
        password=dict(type='str', no_log=True), sslmode=dict(type='str', default='prefer'))),
    migrations_dir=dict(type='str'),
    migrations_table=dict(type='str', default='goship_schema_migrations'),
    migrate_lock_wait=dict(type='int', default=300),
    # Taken out by the action plugin (controller side); listed so the module documents them.
    package_src=dict(type='path'),
    haproxy=dict(type='dict', options=dict(
        socket=dict(type='str', required=True), backend=dict(type='str', required=True),
        server=dict(type='str', required=True), timeout=dict(type='float', default=30))),
    stage_from=dict(type='path'),
)
REQUIRED_IF = [('state', 'migrated', ['database', 'migrations_dir']), ('state', 'checked', ['version']),
               ('state', 'deployed', ['version'])]


def build_request(params):
    """The Request from module params; raises GoshipError listing every bad option."""
    problems = version_problems(params['version'])
    if params['sha256'] and (len(params['sha256']) != 64 or params['sha256'].strip('0123456789abcdef')):
        problems.append('sha256 must be 64 lowercase hex digits, got %r' % params['sha256'])
    if params['cache_keep'] < 2:
        problems.append('cache_keep must be at least 2 (the installed package and the one to roll back to)')
    if problems:
        raise GoshipError('; '.join(problems) + '. Nothing was changed.')
    health = params['health']
    gate = None
    if health:
        gate = Gate(health['url'], health['status_url'], health['version_key'],
                    {str(k): str(v) for k, v in health['require'].items()},
                    timeout=health['timeout'], interval=health['interval'], stable=health['stable'])
    return Request(
        name=params['name'], version=params['version'], package_name=params['package_name'] or params['name'],
        arch=params['arch'], cache_dir=params['cache_dir'], sha256=params['sha256'],
        files=list(params['files']) + list(params['secret_files']), remove=params['remove'], socket=params['socket'],
        user=params['user'], group=params['group'], directories=params['directories'], drain=params['drain'],
        consul_url=params['consul_url'], journal_lines=params['journal_lines'], cache_keep=params['cache_keep'],
        gate=gate)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)
    try:
        params = module.params
        if params['state'] == 'absent':
            module.exit_json(**remove(Removal(
                name=params['name'], package_name=params['package_name'] or params['name'],
                files=params['remove'],
                directories=[spec['path'] for spec in params['directories']] + [params['cache_dir']],
                user=params['user'], group=params['group']), Host(module.run_command), check_mode=module.check_mode))
        release = Release(build_request(module.params), Host(module.run_command),
                          check_mode=module.check_mode)
        if params['state'] == 'migrated':
            missing = [key for key in ('host', 'name', 'user') if not params['database'].get(key)]
            if missing:
                raise GoshipError('database needs host, name and user; missing: %s. Nothing was changed.'
                                  % ', '.join(missing))
            result = release.migrate(params['database'], params['migrations_dir'], params['migrations_table'],
                                     params['migrate_lock_wait'], dry_run=module.check_mode)
        elif params['state'] == 'checked':
            result = release.check()
            result['changed'] = result['staged'] = False
            if params['stage_from'] and result['needs_release'] and not result['cached'] and not module.check_mode:
                release.stage(params['stage_from'])
                result.update(changed=True, staged=True, cached=True)
            result['phases'] = release.phases
        else:
            result = release.deploy()
    except GoshipError as exc:   # raised before anything was changed (or with changed in its details)
        module.fail_json(**dict({'changed': False}, **exc.result()))
    if result.get('failed'):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
