# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""goship.deploy.s3_artifact: on the controller (connection local: build uploads, the rollout's
fetch into the controller cache) the module runs inside this worker, without a new process and a
boto3 import, unless the task sets file attributes (mode, owner, ...), which only the module
process applies. Elsewhere, as usual."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.goship.deploy.plugins.modules import s3_artifact
from ansible_collections.goship.deploy.plugins.plugin_utils.local_module import (
    asks_for_file_attributes, on_controller, run_local)


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        args = self._task.args
        if not on_controller(self._connection) or asks_for_file_attributes(args):
            return self._execute_module(module_name='goship.deploy.s3_artifact', module_args=args, task_vars=task_vars)
        return run_local(s3_artifact.main, args, self._task.check_mode, s3_artifact.ARGUMENT_SPEC,
                         diff=self._task.diff, add_file_common_args=True, name='s3_artifact',
                         required_if=s3_artifact.REQUIRED_IF)
