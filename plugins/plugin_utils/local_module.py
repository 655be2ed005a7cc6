# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a controller-side module inside its action plugin, without a new Python process.

A module that only talks to an API from the controller (the release ledger on S3) costs a
process start and a boto3 import (about 0.6 s) when Ansible runs it the usual way; run here, in
the worker that already has boto3 loaded from the EC2 inventory, it costs the API calls alone.
The module's own `main(module)` runs unchanged against LocalModule, which validates the
arguments with the module's argument_spec and ends the run as AnsibleModule would (no-log values
masked in the result).
"""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values


class ModuleDone(Exception):
    """Raised by exit_json and fail_json: carries the module's result."""

    def __init__(self, result):
        super().__init__(result.get('msg', ''))
        self.result = result


class LocalModule:
    """The part of AnsibleModule that the collection's controller-side modules use."""

    def __init__(self, args, check_mode, argument_spec, **constraints):
        validation = ArgumentSpecValidator(argument_spec, **constraints).validate(dict(args))
        self._no_log_values = validation._no_log_values
        self.params = validation.validated_parameters
        self.check_mode = check_mode
        if validation.error_messages:
            self.fail_json(msg='; '.join(validation.error_messages))

    def exit_json(self, **result):
        result.setdefault('changed', False)
        raise ModuleDone(remove_values(result, self._no_log_values))

    def fail_json(self, msg, **result):
        result.update(failed=True, msg=msg)
        result.setdefault('changed', False)
        raise ModuleDone(remove_values(result, self._no_log_values))


def run_local(main, args, check_mode, argument_spec, **constraints):
    """The result of `main(module)` run in this process."""
    try:
        main(LocalModule(args, check_mode, argument_spec, **constraints))
    except ModuleDone as done:
        return done.result
    return {'failed': True, 'msg': 'the module ended without a result'}
