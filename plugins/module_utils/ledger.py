# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release ledger and the deploy lock, per app and environment, in S3.

Layout under ``<prefix>/<app>/<env>/``: ``lock.json`` (present while a rollout runs, created with
a conditional put so two controllers can never both hold it), ``current.json`` (the release that
last rolled out successfully) and ``history/<started>-<version>.json`` (one entry per rollout,
success or not). Rollback, promotion, new instances and the deploy report read it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.goship.deploy.plugins.module_utils import aws
from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError

HISTORY_PAGES = 100   # list pages (1,000 keys each) read at most when reading history


class LedgerError(GoshipError):
    """The ledger or the lock could not be read or written, or the lock is held."""


def base_key(prefix: str, app: str, env: str) -> str:
    return '/'.join(part.strip('/') for part in (prefix, app, env) if part and part.strip('/'))


def utc_now() -> str:
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def playbook_pid() -> int:
    """The pid of the ansible-playbook process this module runs under (the oldest ancestor whose
    command line names it), so a later run can tell whether the lock holder still runs."""
    pid, found = os.getppid(), 0
    for _depth in range(32):
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as handle:
                if b'ansible-playbook' in handle.read():
                    found = pid
            with open('/proc/%d/stat' % pid) as handle:
                pid = int(handle.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if pid <= 1:
            break
    return found or os.getppid()


class Ledger:
    """One app and environment's ledger in ``bucket``; ``s3`` is a boto3 S3 client."""

    def __init__(self, s3: Any, bucket: str, prefix: str, app: str, env: str):
        self.s3 = s3
        self.bucket = bucket
        self.base = base_key(prefix, app, env)
        self.app = app
        self.env = env

    def key(self, name: str) -> str:
        return '%s/%s' % (self.base, name)

    def uri(self, name: str) -> str:
        return 's3://%s/%s' % (self.bucket, self.key(name))

    def _call(self, what: str, func: Callable[..., Any], **kwargs: Any) -> Any:
        """One S3 call; AWS errors become LedgerError with the code kept in details."""
        try:
            return func(**kwargs)
        except (aws.BotoCoreError, aws.ClientError) as exc:
            raise LedgerError(aws.describe_error(exc, what, bucket=self.bucket, key=kwargs.get('Key')),
                              {'error': aws.error_details(exc)})

    def read(self, name: str) -> Optional[Dict[str, Any]]:
        """The JSON object at ``name`` with its ETag (key ``_etag``), or None when there is none."""
        try:
            resp = self.s3.get_object(Bucket=self.bucket, Key=self.key(name))
        except aws.ClientError as exc:
            if aws.error_code(exc) in ('NoSuchKey', '404'):
                return None
            raise LedgerError(aws.describe_error(exc, 'read %s' % self.uri(name), bucket=self.bucket,
                                                 key=self.key(name)), {'error': aws.error_details(exc)})
        except aws.BotoCoreError as exc:
            raise LedgerError(aws.describe_error(exc, 'read %s' % self.uri(name), bucket=self.bucket,
                                                 key=self.key(name)), {'error': aws.error_details(exc)})
        try:
            data = json.loads(resp['Body'].read())
        except ValueError as exc:
            raise LedgerError('%s is not JSON (%s): fix or remove it' % (self.uri(name), exc))
        data['_etag'] = resp.get('ETag', '')
        return data

    def write(self, name: str, data: Dict[str, Any], only_if_absent: bool = False) -> str:
        kwargs = dict(Bucket=self.bucket, Key=self.key(name), ContentType='application/json',
                      Body=json.dumps(data, indent=2, sort_keys=True).encode('utf-8'))
        if only_if_absent:
            kwargs['IfNoneMatch'] = '*'
        return self._call('write %s' % self.uri(name), self.s3.put_object, **kwargs).get('ETag', '')

    # -- the lock --------------------------------------------------------------------------------
    def lock(self, holder: Dict[str, Any], break_lock: bool = False) -> Dict[str, Any]:
        """Take the lock or raise LedgerError naming who holds it. Returns the lock with its ETag."""
        for _attempt in range(2):
            try:
                etag = self.write('lock.json', holder, only_if_absent=True)
                return dict(holder, _etag=etag)
            except LedgerError as exc:
                if exc.details.get('error', {}).get('code') not in ('PreconditionFailed', '412'):
                    raise
            held = self.read('lock.json')
            if held is None:
                continue   # released between the two calls: try once more
            if not break_lock:
                raise LedgerError(self.describe_holder(held) + ' Wait for it to finish, or, when you are sure no '
                                  'deploy is running, break the lock with -e goship_break_lock=true.',
                                  {'lock': self._public(held)})
            self._call('break the lock %s' % self.uri('lock.json'), self.s3.delete_object,
                       Bucket=self.bucket, Key=self.key('lock.json'), IfMatch=held['_etag'])
            holder = dict(holder, broke=self._public(held))
        raise LedgerError('Could not take the lock %s: another deploy took it meanwhile.' % self.uri('lock.json'))

    def describe_holder(self, held: Dict[str, Any]) -> str:
        said = ('A deploy of %s to %s is in progress: %s on %s (pid %s) took the lock %s at %s for version %s.'
                % (self.app, self.env, held.get('holder', '?'), held.get('controller', '?'), held.get('pid', '?'),
                   self.uri('lock.json'), held.get('started', '?'), held.get('version', '?')))
        if held.get('controller') == socket.gethostname() and isinstance(held.get('pid'), int) \
                and not pid_alive(held['pid']):
            said += (' That process is no longer running on this controller: the run was killed and left the '
                     'lock behind.')
        return said

    def unlock(self, run_id: str) -> bool:
        """Release the lock if this run holds it; True when something was deleted."""
        held = self.read('lock.json')
        if held is None:
            return False
        if held.get('run_id') != run_id:
            raise LedgerError('%s belongs to another run now (%s); left in place.'
                              % (self.uri('lock.json'), self.describe_holder(held)))
        self._call('release the lock %s' % self.uri('lock.json'), self.s3.delete_object,
                   Bucket=self.bucket, Key=self.key('lock.json'), IfMatch=held['_etag'])
        return True

    # -- entries ---------------------------------------------------------------------------------
    def record(self, entry: Dict[str, Any]) -> Dict[str, str]:
        """Write a rollout's history entry and, when it succeeded, current.json. Returns the keys."""
        stamp = str(entry.get('started') or utc_now()).replace(':', '').replace('-', '')
        name = 'history/%s-%s.json' % (stamp, entry.get('version', 'unknown'))
        self.write(name, entry)
        keys = {'history': self.key(name)}
        if entry.get('result') == 'succeeded':
            self.write('current.json', entry)
            keys['current'] = self.key('current.json')
        return keys

    def history(self, limit: int = 20, version: Optional[str] = None) -> List[Dict[str, Any]]:
        """The newest ``limit`` history entries, newest first; only those of ``version`` when given
        (found by key, so an old release costs no more reads than a new one)."""
        keys: List[str] = []
        paginator = self.s3.get_paginator('list_objects_v2')
        try:
            # Keys sort oldest first (they start with the rollout's time): list them all, bounded.
            for number, page in enumerate(paginator.paginate(Bucket=self.bucket, Prefix=self.key('history/'))):
                keys += [item['Key'] for item in page.get('Contents') or []]
                if number + 1 >= HISTORY_PAGES:
                    break
        except (aws.BotoCoreError, aws.ClientError) as exc:
            raise LedgerError(aws.describe_error(exc, 'list %s' % self.uri('history/'), bucket=self.bucket),
                              {'error': aws.error_details(exc)})
        if version is not None:
            keys = [key for key in keys if key.endswith('-%s.json' % version)]
        wanted = [key[len(self.base) + 1:] for key in sorted(keys, reverse=True)[:limit]]
        # The reads are independent: a few at a time (the client is thread-safe), newest first kept.
        with ThreadPoolExecutor(max_workers=min(8, len(wanted) or 1)) as pool:
            read = list(pool.map(self.read, wanted))
        entries = []
        for entry in read:
            if entry:
                entry.pop('_etag', None)
                entries.append(entry)
        return entries

    @staticmethod
    def _public(data: Dict[str, Any]) -> Dict[str, Any]:
        return {k: v for k, v in data.items() if not k.startswith('_')}
