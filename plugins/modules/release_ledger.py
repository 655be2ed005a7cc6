#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_ledger
short_description: The release ledger and deploy lock of an app and environment, in S3
version_added: "0.2.0"
author: goship.deploy maintainers (@goship)
description:
  - Keeps, under C(<prefix>/<app>/<env>/) in a bucket, C(current.json) (the release that last rolled
    out successfully), one C(history/<started>-<version>.json) per rollout, and C(lock.json) while
    a rollout runs.
  - "O(state=locked): takes the deploy lock with a conditional put (C(If-None-Match: *)), so two
    controllers can never both hold it. When it is held, fails naming the holder, the controller,
    the version and when it started, and says when the holder's process no longer runs on this
    controller (a killed run). O(break_lock=true) breaks a held lock, explicitly."
  - "O(state=unlocked): releases the lock when this run (O(run_id)) holds it."
  - "O(state=recorded): writes O(entry) as a history entry and, when its C(result) is
    C(succeeded), as C(current.json); with O(run_id), then releases the lock of that run."
  - "O(state=read): returns C(current), the newest O(limit) history entries and the previous
    good release (the newest succeeded entry of another version than the current one). With
    O(version), only that version's history entries (what promotion checks)."
options:
  state:
    description: What to do, see the description.
    type: str
    choices: [locked, unlocked, recorded, read]
    default: read
  bucket:
    description: The ledger bucket (C(goship_ledger_bucket)).
    type: str
    required: true
  prefix:
    description: Key prefix of every ledger (C(goship_ledger_prefix)).
    type: str
    default: ledger
  app:
    description: The app (C(goship_app)).
    type: str
    required: true
  env:
    description: The environment (C(goship_env)).
    type: str
    required: true
  run_id:
    description: Identifies this rollout; the lock records it and only it releases the lock.
    type: str
  version:
    description:
      - The version being rolled out, recorded in the lock (O(state=locked)).
      - With O(state=read), return only this version's history entries.
    type: str
  holder:
    description: Who runs the rollout, recorded in the lock (for example C(alice) or an AWX job).
    type: str
  break_lock:
    description: Break a lock held by another run (and record that in the new lock).
    type: bool
    default: false
  entry:
    description: The history entry for O(state=recorded) (the deploy report JSON).
    type: dict
  limit:
    description: History entries returned by O(state=read) and O(state=recorded).
    type: int
    default: 20
extends_documentation_fragment:
  - goship.deploy.aws
attributes:
  check_mode:
    support: full
    description: Nothing is written or deleted in check mode; O(state=read) reads.
  diff_mode:
    support: none
    description: Not supported.
"""

EXAMPLES = r"""
- name: Take the deploy lock
  goship.deploy.release_ledger:
    state: locked
    bucket: "{{ goship_ledger_bucket }}"
    app: hello-svc
    env: production
    version: "1.214"
    run_id: "{{ run_id }}"
    holder: "{{ lookup('env', 'USER') }}"

- name: Read the ledger (what rollback.yml does)
  goship.deploy.release_ledger:
    bucket: "{{ goship_ledger_bucket }}"
    app: hello-svc
    env: production
  register: ledger
"""

RETURN = r"""
lock:
  description: The lock taken (holder, controller, pid, version, started, run_id), or the one found held.
  returned: state=locked
  type: dict
current:
  description: The ledger's current release entry, or null.
  returned: state=read
  type: dict
history:
  description: The newest history entries (O(limit)), newest first.
  returned: state=read or state=recorded
  type: list
  elements: dict
previous:
  description: The newest succeeded entry of another version than current (the rollback target), or null (also with O(version)).
  returned: state=read
  type: dict
keys:
  description: The keys written by O(state=recorded).
  returned: state=recorded
  type: dict
unlocked:
  description: Whether the lock was released (O(state=recorded) with O(run_id)).
  returned: state=recorded
  type: bool
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.goship.deploy.plugins.module_utils import aws
from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError
from ansible_collections.goship.deploy.plugins.module_utils.ledger import Ledger, playbook_pid, utc_now

ARGUMENT_SPEC = aws.aws_argument_spec(
    state=dict(type='str', choices=['locked', 'unlocked', 'recorded', 'read'], default='read'),
    bucket=dict(type='str', required=True),
    prefix=dict(type='str', default='ledger'),
    app=dict(type='str', required=True),
    env=dict(type='str', required=True),
    run_id=dict(type='str'),
    version=dict(type='str'),
    holder=dict(type='str'),
    break_lock=dict(type='bool', default=False),
    entry=dict(type='dict'),
    limit=dict(type='int', default=20),
)
REQUIRED_IF = [('state', 'locked', ['run_id', 'version']), ('state', 'unlocked', ['run_id']),
               ('state', 'recorded', ['entry'])]


def run(module, ledger):
    params = module.params
    state = params['state']
    if state == 'read':
        current = ledger.read('current.json')
        if current:
            current.pop('_etag', None)
        history = ledger.history(params['limit'], version=params['version'])
        previous = None if params['version'] else next(
            (entry for entry in history if entry.get('result') == 'succeeded'
             and entry.get('version') != (current or {}).get('version')), None)
        return dict(changed=False, current=current, history=history, previous=previous)
    if module.check_mode:
        return dict(changed=True)
    if state == 'locked':
        holder = dict(holder=params['holder'] or 'unknown', controller=socket.gethostname(),
                      pid=playbook_pid(), version=params['version'],
                      started=utc_now(), run_id=params['run_id'], app=ledger.app, env=ledger.env)
        lock = ledger.lock(holder, break_lock=params['break_lock'])
        lock.pop('_etag', None)
        return dict(changed=True, lock=lock)
    if state == 'unlocked':
        return dict(changed=ledger.unlock(params['run_id']))
    keys = ledger.record(params['entry'])
    released = ledger.unlock(params['run_id']) if params['run_id'] else False
    return dict(changed=True, keys=keys, unlocked=released, history=ledger.history(params['limit']))


def main(module=None):
    """`module` is given when the action plugin runs this on the controller, in its own process."""
    module = module or AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)
    aws.require_boto3(module)
    params = module.params
    try:
        s3 = aws.client('s3', params)
        ledger = Ledger(s3, params['bucket'], params['prefix'], params['app'], params['env'])
        result = run(module, ledger)
    except GoshipError as exc:
        module.fail_json(**exc.result())
    except (aws.BotoCoreError, aws.ClientError) as exc:   # aws.ConnectionConfigError is a GoshipError
        module.fail_json(msg=aws.describe_error(exc, 'state=%s of the ledger in s3://%s' % (params['state'], params['bucket']),
                                                bucket=params['bucket'], params=params),
                         error=aws.error_details(exc))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
