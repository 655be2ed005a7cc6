# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SQL migration runner as a filter, so the go_service role and CodeDeploy bundles share one script."""

from __future__ import annotations

DOCUMENTATION = r'''
name: migrate_script
author: goship.deploy maintainers (@goship)
version_added: 0.1.0
short_description: The shell script that applies a Go service's SQL migrations once
description:
  - Renders the same migration runner that M(goship.deploy.codedeploy_revision) ships as its
    C(AfterInstall) hook, for a given service.
  - The script reads C(PGHOST), C(PGPORT), C(PGDATABASE), C(PGUSER), C(PGPASSWORD) from
    O(pg_env_file) on the host, takes a PostgreSQL advisory lock derived from the service name
    (so concurrent runs wait for each other), and applies each pending C(*.sql) file of
    O(migrations_dir) in file-name order, each in its own transaction together with its row in
    O(migrations_table). A file that fails is rolled back and nothing after it runs; the script
    exits non-zero.
  - It prints one line per applied file, C(migrate) then C(applying NAME).
  - Needs C(psql) (Debian C(postgresql-client)) on the host that runs it.
options:
  _input:
    description: The service name (letters, digits, C(.), C(_), C(@), C(-)).
    type: str
    required: true
  migrations_dir:
    description: Absolute directory on the host holding the C(*.sql) files.
    type: str
    required: true
  pg_env_file:
    description: Absolute path of the connection settings file (mode 0600).
    type: str
    default: /etc/<service>/migrate.env
  migrations_table:
    description: Bookkeeping table (lowercase identifier, optionally schema-qualified).
    type: str
    default: goship_schema_migrations
  lock_wait:
    description: Seconds to wait for the migration lock before giving up.
    type: int
    default: 840
'''

EXAMPLES = r'''
- name: Install the migration runner
  ansible.builtin.copy:
    dest: /usr/local/lib/goship/hello-svc/migrate
    mode: "0700"
    content: "{{ 'hello-svc' | goship.deploy.migrate_script(migrations_dir='/usr/share/hello-svc/migrations') }}"
'''

RETURN = r'''
_value:
  description: The script text (POSIX sh).
  type: str
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.goship.deploy.plugins.module_utils.codedeploy_bundle import BundleError
from ansible_collections.goship.deploy.plugins.module_utils.codedeploy_hooks import migrate_script as render_migrate_script


def migrate_script(service, migrations_dir, pg_env_file=None, migrations_table='goship_schema_migrations',
                   lock_wait=840):
    try:
        return render_migrate_script(service, migrations_dir, pg_env_file=pg_env_file,
                                     migrations_table=migrations_table, lock_wait=lock_wait)
    except BundleError as exc:
        raise AnsibleFilterError('migrate_script: %s' % exc)


class FilterModule:
    """goship.deploy filters."""

    def filters(self):
        return {'migrate_script': migrate_script}
