# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a controller-side module inside its action plugin, without a new Python process.

A module that only talks to an API from the controller (the release ledger, S3 artifacts) costs a
process start and a boto3 import (about 0.6 s) when Ansible runs it the usual way; run here, in
the worker that already has boto3 loaded from the EC2 inventory, it costs the API calls alone.
The module's own `main(module)` runs unchanged against LocalModule, which validates the
arguments with the module's argument_spec and ends the run as AnsibleModule would (no-log values
masked in the result, warnings shown).

LocalModule sets no file attributes: an action plugin runs a module here only when the task asks
for none (see `asks_for_file_attributes`), and leaves the rest to the module process.
"""

from __future__ import annotations

import shutil
import tempfile

from ansible.module_utils.basic import FILE_COMMON_ARGUMENTS
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError
from ansible.module_utils.common.parameters import remove_values


class ModuleDone(Exception):
    """Raised by exit_json and fail_json: carries the module's result."""

    def __init__(self, result):
        super().__init__(result.get('msg', ''))
        self.result = result


def on_controller(connection):
    """Whether a task's connection is the controller itself (connection: local)."""
    return connection._load_name.rpartition('.')[2] == 'local'


def asks_for_file_attributes(args):
    """Whether a task sets any of the file attributes (mode, owner, ...) AnsibleModule applies."""
    return any(args.get(name) is not None for name in FILE_COMMON_ARGUMENTS)


class LocalModule:
    """The part of AnsibleModule that the collection's controller-side modules use."""

    def __init__(self, args, check_mode, argument_spec, diff=False, add_file_common_args=False, name='module',
                 **constraints):
        spec = dict(argument_spec, **FILE_COMMON_ARGUMENTS) if add_file_common_args else argument_spec
        validation = ArgumentSpecValidator(spec, **constraints).validate(dict(args))
        self._no_log_values = validation._no_log_values
        self._warnings = []
        self._tmpdir = None
        self.params = validation.validated_parameters
        self.check_mode = check_mode
        self._diff = diff
        if validation.error_messages:
            # As AnsibleModule says it: the first error, unknown options named as such.
            msg = validation.errors.msg
            if isinstance(validation.errors[0], UnsupportedError):
                msg = 'Unsupported parameters for (%s) module: %s' % (name, msg)
            self.fail_json(msg=msg)

    @property
    def tmpdir(self):
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix='goship-local-')
        return self._tmpdir

    def cleanup(self):
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def warn(self, warning):
        self._warnings.append(warning)

    def load_file_common_arguments(self, params, path=None):
        return {'path': path or params.get('dest') or params.get('path')}

    def set_fs_attributes_if_different(self, file_args, changed, diff=None, expand=True):
        return changed   # nothing asked for: see the module docstring

    def _end(self, result):
        if self._warnings:
            result['warnings'] = list(result.get('warnings') or []) + self._warnings
        raise ModuleDone(remove_values(result, self._no_log_values))

    def exit_json(self, **result):
        result.setdefault('changed', False)
        self._end(result)

    def fail_json(self, msg, **result):
        result.update(failed=True, msg=msg)
        result.setdefault('changed', False)
        self._end(result)


def run_local(main, args, check_mode, argument_spec, diff=False, add_file_common_args=False, name='module',
              **constraints):
    """The result of `main(module)` run in this process."""
    module = None
    try:
        module = LocalModule(args, check_mode, argument_spec, diff=diff, add_file_common_args=add_file_common_args,
                             name=name, **constraints)
        main(module)
    except ModuleDone as done:
        return done.result
    finally:
        if module is not None:
            module.cleanup()
    return {'failed': True, 'msg': 'the module ended without a result'}
