# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""goship.deploy.release_ledger: on the controller (connection local, as deploy.yml runs it) the
module runs inside this worker, without a new process and a boto3 import; elsewhere, as usual."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.goship.deploy.plugins.modules import release_ledger
from ansible_collections.goship.deploy.plugins.plugin_utils.local_module import on_controller, run_local


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        if not on_controller(self._connection):
            return self._execute_module(module_name='goship.deploy.release_ledger', module_args=self._task.args,
                                        task_vars=task_vars)
        return run_local(release_ledger.main, self._task.args, self._task.check_mode,
                         release_ledger.ARGUMENT_SPEC, name='release_ledger', required_if=release_ledger.REQUIRED_IF)
