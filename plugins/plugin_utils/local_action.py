# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugin of a controller-side module that runs in-process on the controller.

Apart from local_module.py on purpose: this imports controller-side Ansible (ActionBase), which
local_module.py and its tests must not (it switches module warnings to the controller's display
for every later test in the same process)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.goship.deploy.plugins.plugin_utils.local_module import (
    asks_for_file_attributes, on_controller, run_local)


class LocalModuleAction(ActionBase):
    """The action plugin of a controller-side module: runs it in this worker when the task runs on
    the controller (and asks for no file attributes), else as a module process, as usual.

    Subclasses set `module` (the module's Python module: main(module), ARGUMENT_SPEC, REQUIRED_IF)
    and, for a module with AnsibleModule's file arguments, `file_common_args = True`."""

    module = None
    file_common_args = False

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        args, name = self._task.args, self.module.__name__.rpartition('.')[2]
        if not on_controller(self._connection) or (self.file_common_args and asks_for_file_attributes(args)):
            return self._execute_module(module_name='goship.deploy.' + name, module_args=args, task_vars=task_vars)
        return run_local(self.module.main, args, self._task.check_mode, self.module.ARGUMENT_SPEC,
                         diff=self._task.diff, add_file_common_args=self.file_common_args, name=name,
                         required_if=self.module.REQUIRED_IF)
