# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remove a service that goship.deploy.service_release installed, and everything it made.

Stops and disables the units, purges the package (its maintainer scripts stop what is left and
drop its conffiles), removes the files and directories the release wrote, and the service's user
and group. Each step looks first, so a second run changes nothing.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Dict, List

from ansible_collections.goship.deploy.plugins.module_utils.service_release import Host, ReleaseError


@dataclass
class Removal:
    """What to remove (the module's options for state=absent)."""

    name: str
    package_name: str
    files: List[str] = field(default_factory=list)
    directories: List[str] = field(default_factory=list)
    user: str = ''
    group: str = ''

    @property
    def units(self) -> List[str]:
        return [self.name + '.socket', self.name + '.service']


def _unit_known(host: Host, unit: str) -> bool:
    state = host.unit(unit)
    return state.get('LoadState') not in ('not-found', None, '') or state.get('ActiveState') not in ('inactive', None, '')


def _package_known(removal: Removal, host: Host) -> bool:
    """Installed, or removed with its conffiles left (dpkg status config-files)."""
    rc, out, _err = host.run(['dpkg-query', '--show', '--showformat', '${db:Status-Status}', removal.package_name])
    return rc == 0 and out.strip() not in ('', 'not-installed')


@dataclass
class _Left:
    """What of the service is still on the host, looked up once."""

    units: List[str]
    package: bool
    paths: List[str]
    user: bool
    group: bool

    def steps(self, removal: Removal) -> List[str]:
        """What a removal removes, in the order it does (empty: nothing is left)."""
        return (['stop %s' % unit for unit in self.units]
                + (['purge package %s' % removal.package_name] if self.package else [])
                + self.paths
                + (['user %s' % removal.user] if self.user else [])
                + (['group %s' % removal.group] if self.group else []))


def _left(removal: Removal, host: Host) -> _Left:
    return _Left(units=[unit for unit in removal.units if _unit_known(host, unit)],
                 package=_package_known(removal, host),
                 paths=[path for path in removal.files + removal.directories if os.path.lexists(path)],
                 user=bool(removal.user) and host.run(['getent', 'passwd', removal.user])[0] == 0,
                 group=bool(removal.group) and host.run(['getent', 'group', removal.group])[0] == 0)


def planned(removal: Removal, host: Host) -> List[str]:
    """What a removal would remove here, in the order it would (an empty list: nothing is left)."""
    return _left(removal, host).steps(removal)


def remove(removal: Removal, host: Host, check_mode: bool = False) -> Dict[str, Any]:
    """Carry out the removal; returns changed and the list of what was removed."""
    left = _left(removal, host)
    steps = left.steps(removal)
    if check_mode or not steps:
        return {'changed': bool(steps), 'removed': steps}
    if left.units:
        # disable --now stops the socket first, so nothing starts the service again meanwhile.
        host.run(['systemctl', 'disable', '--now'] + left.units)
    if left.package:
        host.must(['env', 'DEBIAN_FRONTEND=noninteractive', 'dpkg', '--purge', removal.package_name],
                  'purging %s' % removal.package_name)
    for path in left.paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):   # the purge may have removed it already
            os.unlink(path)
    host.systemctl('daemon-reload')
    for unit in left.units:
        host.run(['systemctl', 'reset-failed', unit])   # forget a failed state; fails when there is none
    if left.user:
        host.must(['userdel', removal.user], 'removing user %s' % removal.user)
    # Looked up again: userdel also removes a primary group named after the user (USERGROUPS_ENAB).
    if left.group and host.run(['getent', 'group', removal.group])[0] == 0:
        host.must(['groupdel', removal.group], 'removing group %s' % removal.group)
    still = [step for step in planned(removal, host) if not step.startswith('stop ')]
    if still:
        raise ReleaseError('%s was removed only in part; still here: %s' % (removal.name, ', '.join(still)),
                           {'changed': True, 'removed': steps})
    return {'changed': True, 'removed': steps}
