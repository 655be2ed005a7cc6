# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's half of goship.deploy.service_release.

Two things a host's release needs that only the controller can do, folded into the same task so
that a rollout stays one task per host: copying the package from the controller cache when the
host lacks it (O(package_src) with state=checked), and draining the host from HAProxy around the
release (O(haproxy) with state=deployed; with state=checked, a host left in maintenance by an
interrupted rollout is reported as needing the release, which puts it back). Everything else is
the module, on the host.
"""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase

from ansible_collections.goship.deploy.plugins.plugin_utils.haproxy import HAProxyError, RuntimeAPI, set_server

# A host is put back into rotation when it serves a good release, or when nothing was changed.
_BACK_IN_ROTATION = ('upgraded', 'restarted', 'unchanged', 'rolled_back')


class ActionModule(ActionBase):

    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        args = dict(self._task.args)
        stages = 'package_src' in args
        package_src = args.pop('package_src', None)
        haproxy = args.pop('haproxy', None)
        state = args.get('state', 'deployed')
        try:
            if state == 'checked' and haproxy:
                return self._undrained_check(self._check_and_stage(args, package_src, task_vars) if stages
                                             else self._module(args, task_vars), haproxy)
            if stages and state == 'checked':
                return self._check_and_stage(args, package_src, task_vars)
            if state == 'deployed':
                return self._summary(args, self._release_drained(args, haproxy, task_vars) if haproxy
                                     else self._module(args, task_vars))
            return self._module(args, task_vars)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    @staticmethod
    def _summary(args, result):
        """What a rollout reports per host, on every result of state=deployed (also a failed or
        unreachable one), so that the registered result is the host's report as it is."""
        phases = result.get('phases') or {}
        result.setdefault('name', args.get('name', ''))
        result.setdefault('version', args.get('version', ''))
        result['outcome'] = 'unreachable' if result.get('unreachable') else result.get('outcome') or 'failed'
        result['duration_s'] = round(sum(value for value in phases.values() if isinstance(value, (int, float))), 1)
        result['message'] = result.get('msg', '')
        result.setdefault('health', result.get('msg', ''))
        return result

    def _module(self, args, task_vars):
        return self._execute_module(module_name='goship.deploy.service_release', module_args=args,
                                    task_vars=task_vars)

    def _check_and_stage(self, args, package_src, task_vars):
        result = self._module(args, task_vars)
        if result.get('failed') or not result.get('needs_release') or result.get('cached') or self._task.check_mode:
            return result
        if not package_src:   # an empty package_src: the release comes from host caches only
            result.update(failed=True, msg='%s needs %s %s and does not have it in its cache (%s), and nothing is '
                          'copied (the release comes from host caches only). Nothing was changed.'
                          % (task_vars.get('inventory_hostname', 'the host'), args.get('name'), args.get('version'),
                             args.get('cache_dir') or 'the host cache'))
            return result
        try:
            source = self._find_needle('files', package_src)
        except Exception as exc:  # AnsibleError with the search path in its text
            return dict(failed=True, changed=False, msg='package_src: %s. Nothing was changed.' % exc)
        remote = self._connection._shell.join_path(self._make_tmp_path(), 'release.deb')
        self._transfer_file(source, remote)
        self._fixup_perms2((self._connection._shell.tmpdir, remote))
        staged = self._module(dict(args, stage_from=remote), task_vars)
        staged['phases'] = dict(result.get('phases') or {}, **(staged.get('phases') or {}))
        return staged

    @staticmethod
    def _undrained_check(result, haproxy):
        """A host that needs nothing but is in maintenance in HAProxy was left drained (a rollout
        killed between drain and undrain): it needs the release call, which puts it back."""
        if result.get('failed') or result.get('needs_release') or result.get('unreachable'):
            return result
        backend, server = str(haproxy.get('backend', '')), str(haproxy.get('server', ''))
        try:
            status = RuntimeAPI(str(haproxy.get('socket', '')), timeout=5.0).server_stats(backend, server).get('status', '')
        except HAProxyError as exc:
            result.update(failed=True, msg='Could not read %s/%s in HAProxy: %s. Nothing was changed.'
                          % (backend, server, exc.message))
            return result
        if status.startswith('MAINT'):
            result['needs_release'] = True
            result['reasons'] = list(result.get('reasons') or []) + [
                '%s/%s is in maintenance in HAProxy (left drained by an interrupted rollout?); the release puts it '
                'back' % (backend, server)]
        return result

    def _release_drained(self, args, haproxy, task_vars):
        args['drain'] = 'external'
        if self._task.check_mode:
            return self._module(args, task_vars)
        options = dict(timeout=30.0, **haproxy)
        missing = [key for key in ('socket', 'backend', 'server') if not options.get(key)]
        if missing:
            return dict(failed=True, changed=False, outcome='failed',
                        msg='haproxy needs socket, backend and server; missing %s. Nothing was changed.'
                        % ', '.join(missing))
        backend, server, timeout = str(options['backend']), str(options['server']), float(options['timeout'])
        started = time.monotonic()
        api = None
        try:
            api = RuntimeAPI(str(options['socket']), timeout=5.0)   # a bad address fails here
            set_server(api, backend, server, enabled=False, timeout=timeout)
        except HAProxyError as exc:
            if api is not None:
                self._undrain_quietly(api, backend, server)
            return dict(failed=True, changed=False, outcome='failed',
                        msg='Could not drain %s from HAProxy: %s. Nothing was changed.' % (server, exc.message))
        drained = time.monotonic()
        result = self._module(args, task_vars)
        phases = dict(result.get('phases') or {}, drain=round(drained - started, 3))
        if result.get('unreachable'):
            result['phases'] = phases
            return result   # left drained: nothing is known about what it serves
        if result.get('outcome') in _BACK_IN_ROTATION or not result.get('changed', True):
            undrain_start = time.monotonic()
            try:
                set_server(api, backend, server, enabled=True, timeout=timeout)
            except HAProxyError as exc:
                # Serving the release but out of rotation: the rollout must stop and say why.
                result.update(failed=True, outcome='failed', msg='%s; but it could not be put back into HAProxy: %s' % (
                    result.get('msg') or 'released %s' % result.get('version', ''), exc.message))
            phases['undrain'] = round(time.monotonic() - undrain_start, 3)
        result['phases'] = phases
        return result

    @staticmethod
    def _undrain_quietly(api, backend, server):
        """A drain that failed half way (refused, or timed out waiting) leaves nothing behind."""
        try:
            api.command('enable server %s/%s' % (backend, server))
        except HAProxyError:
            pass
