# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The standard CodeDeploy bundle of a Go service, from a few variables.

:func:`go_service_layout` checks the variables and lays the bundle out (its .deb or binary,
the default hook scripts of ``codedeploy_hooks``, optional SQL migrations, and the appspec
that runs them); :func:`go_service_bundle` builds and validates it with
``codedeploy_bundle``.  Errors are ``codedeploy_bundle.BundleError``, listing every bad
variable at once.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ansible_collections.goship.deploy.plugins.module_utils.appspec import Problem
from ansible_collections.goship.deploy.plugins.module_utils.codedeploy_bundle import (
    FILE_MODE,
    SCRIPT_MODE,
    BundleError,
    FileSpec,
    appspec_from_structure,
    build_bundle,
    bundle_entries,
    validate_bundle,
)
from ansible_collections.goship.deploy.plugins.module_utils.codedeploy_hooks import (
    SERVICE_NAME_RE,
    migrate_script,
    migration_setting_problems,
    render_hook_script,
)
from ansible_collections.goship.deploy.plugins.module_utils.version import version_problems

__all__ = ['DEFAULT_GO_TIMEOUTS', 'BuiltBundle', 'go_service_layout', 'go_service_bundle']

#: hook -> timeout in seconds (the appspec timeouts of the default scripts).
DEFAULT_GO_TIMEOUTS = {'stop': 120, 'migrate': 900, 'install': 600, 'start': 120, 'validate': 150}

_URL_RE = re.compile(r'^https?://[^\s\'"\\]+$')
_KEY_RE = re.compile(r'^[A-Za-z0-9_-]*$')


@dataclass
class BuiltBundle:
    """A built bundle: its bytes, format, appspec text, entries and validation warnings."""

    data: bytes
    fmt: str
    appspec: str
    entries: List[str]
    warnings: List[Problem] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class _GoService:
    """The checked variables of :func:`go_service_layout`."""

    service: str
    version: str
    artifact: str
    health_url: str
    status_url: str
    version_key: str
    migrations_dir: Optional[str]
    sql_files: List[str]
    env_file: str
    migrations_table: str
    binary_dir: str
    unit_file: Optional[str]
    validate_timeout: int
    validate_interval: int
    timeouts: Dict[str, int]


@dataclass
class _Layout:
    """What the bundle is made of, collected while the hooks are laid out."""

    files: List[FileSpec] = field(default_factory=list)
    appspec_files: List[Dict[str, Any]] = field(default_factory=list)
    permissions: List[Dict[str, Any]] = field(default_factory=list)
    hooks: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)

    def script(self, name: str, service: str, **params: Any) -> str:
        """Add ``scripts/<name>.sh`` rendered from the hook template; returns its path."""
        path = 'scripts/%s.sh' % name
        text = render_hook_script(name, service=service, **params)
        self.files.append((text.encode('utf-8'), path, SCRIPT_MODE))
        return path


def _status_url(health_url: str, status_path: str = '/status') -> str:
    match = re.match(r'^(https?://[^/?#]+)', health_url)
    return (match.group(1) if match else health_url.rstrip('/')) + status_path


def _name_problems(service: Any, version: Any, urls: Dict[str, Any], version_key: Any) -> List[str]:
    problems: List[str] = []
    if not isinstance(service, str) or not SERVICE_NAME_RE.match(service):
        problems.append('service %r must be a systemd unit name (letters, digits, _ . @ -)' % (service,))
    problems += version_problems(version)
    for key, url in urls.items():
        if not isinstance(url, str) or not _URL_RE.match(url):
            problems.append('%s %r must be an http:// or https:// URL without spaces or quotes' % (key, url))
    if not isinstance(version_key, str) or not _KEY_RE.match(version_key):
        problems.append('version_key %r must be a JSON key of letters, digits, _ and - (or "" for a '
                        'plain-text body)' % (version_key,))
    return problems


def _seconds_problem(name: str, value: Any) -> Optional[str]:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3600:
        return '%s must be a whole number of seconds from 1 to 3600, not %r' % (name, value)
    return None


def _merged_timeouts(timeouts: Optional[Mapping[str, int]], validate_timeout: Any,
                     problems: List[str]) -> Dict[str, int]:
    """:data:`DEFAULT_GO_TIMEOUTS` with ``timeouts`` applied (problems appended to ``problems``)."""
    merged = dict(DEFAULT_GO_TIMEOUTS)
    merged['validate'] = (validate_timeout + 30) if isinstance(validate_timeout, int) else 0
    for key, value in (timeouts or {}).items():
        if key not in merged:
            problems.append('unknown timeouts key %r (known: %s)' % (key, ', '.join(sorted(merged))))
        merged[key] = value
    for key, value in sorted(merged.items()):
        problem = _seconds_problem('timeouts.%s' % key, value)
        if problem:
            problems.append(problem)
    return merged


def _artifact_problems(artifact_path: str, unit_file: Optional[str]) -> List[str]:
    problems = []
    if not artifact_path or not os.path.isfile(artifact_path):
        problems.append('artifact %r is not a file' % (artifact_path,))
    if unit_file is not None:
        if artifact_path.endswith('.deb'):
            problems.append('unit_file is for a binary artifact; a .deb carries its own systemd unit')
        elif not os.path.isfile(unit_file):
            problems.append('unit_file %r is not a file' % (unit_file,))
    return problems


def _sql_files(migrations_dir: Optional[str], problems: List[str]) -> List[str]:
    """The ``*.sql`` file names of ``migrations_dir``, sorted (problems appended to ``problems``)."""
    if migrations_dir is None:
        return []
    if not os.path.isdir(migrations_dir):
        problems.append('migrations_dir %r is not a directory' % (migrations_dir,))
        return []
    try:
        names = os.listdir(migrations_dir)
    except OSError as exc:
        problems.append('migrations_dir %r cannot be read: %s' % (migrations_dir, exc.strerror or exc))
        return []
    sql_files = sorted(n for n in names if n.endswith('.sql') and os.path.isfile(os.path.join(migrations_dir, n)))
    bad = [n for n in sql_files if not re.match(r'^[A-Za-z0-9._-]+$', n)]
    if bad:
        problems.append('migration file names may hold only letters, digits, . _ and -: %s' % ', '.join(bad))
    if not sql_files:
        problems.append('migrations_dir %r has no *.sql files' % (migrations_dir,))
    return sql_files


def _after_install(layout: _Layout, go: _GoService) -> None:
    """AfterInstall: ``migrate.sh`` (with the migrations) then ``install.sh`` (.deb); or the binary's files."""
    after_install: List[Dict[str, Any]] = []
    if go.sql_files:
        for name in go.sql_files:
            layout.files.append((os.path.join(go.migrations_dir or '', name), 'migrations/' + name, FILE_MODE))
        text = migrate_script(go.service, 'migrations', pg_env_file=go.env_file,
                              migrations_table=go.migrations_table, lock_wait=max(go.timeouts['migrate'] - 60, 1))
        layout.files.append((text.encode('utf-8'), 'scripts/migrate.sh', SCRIPT_MODE))
        after_install.append({'location': 'scripts/migrate.sh', 'timeout': go.timeouts['migrate']})
    if go.artifact.endswith('.deb'):
        package = 'pkg/' + os.path.basename(go.artifact)
        layout.files.append((go.artifact, package, FILE_MODE))
        after_install.append({
            'location': layout.script('install', go.service, package=package,
                                      lock_timeout=max(go.timeouts['install'] // 2, 1)),
            'timeout': go.timeouts['install']})
    else:
        # A binary: the appspec's files section copies it; permissions make it executable.
        layout.files.append((go.artifact, 'bin/' + go.service, SCRIPT_MODE))
        layout.appspec_files.append({'source': 'bin/' + go.service, 'destination': go.binary_dir})
        layout.permissions.append({'object': posixpath.join(go.binary_dir, go.service), 'mode': '755',
                                   'owner': 'root', 'group': 'root', 'type': ['file']})
        if go.unit_file is not None:
            layout.files.append((go.unit_file, 'systemd/%s.service' % go.service, FILE_MODE))
            layout.appspec_files.append({'source': 'systemd/%s.service' % go.service,
                                         'destination': '/etc/systemd/system'})
    if after_install:
        layout.hooks['AfterInstall'] = after_install


def _lay_out(go: _GoService) -> Tuple[str, List[FileSpec]]:
    """The bundle of checked variables: ``(appspec_text, files)``."""
    layout = _Layout()
    layout.hooks['ApplicationStop'] = [{
        'location': layout.script('stop', go.service, stop_timeout=max(go.timeouts['stop'] - 10, 1)),
        'timeout': go.timeouts['stop']}]
    _after_install(layout, go)
    layout.hooks['ApplicationStart'] = [{'location': layout.script('start', go.service),
                                         'timeout': go.timeouts['start']}]
    layout.hooks['ValidateService'] = [{
        'location': layout.script('validate', go.service, health_url=go.health_url, status_url=go.status_url,
                                  version_key=go.version_key, expected_version=go.version,
                                  timeout=go.validate_timeout, interval=go.validate_interval),
        'timeout': go.timeouts['validate']}]
    appspec_text = appspec_from_structure(
        files=layout.appspec_files, permissions=layout.permissions, hooks=layout.hooks,
        file_exists_behavior='OVERWRITE' if layout.appspec_files else None)
    return appspec_text, layout.files


def go_service_layout(service: str, version: str, artifact: Union[str, 'os.PathLike[str]'],
                      health_url: str, status_url: Optional[str] = None,
                      version_key: str = 'version', migrations_dir: Optional[str] = None,
                      pg_env_file: Optional[str] = None,
                      migrations_table: str = 'goship_schema_migrations',
                      binary_dir: str = '/usr/local/bin', unit_file: Optional[str] = None,
                      validate_timeout: int = 120, validate_interval: int = 2,
                      timeouts: Optional[Mapping[str, int]] = None,
                      ) -> Tuple[str, List[FileSpec]]:
    """The standard bundle of a Go service as ``(appspec_text, files)`` for ``build_bundle``.

    :param artifact: the service's ``.deb`` (installed by ``scripts/install.sh``
        in AfterInstall) or its binary (copied by the ``files`` section to
        ``binary_dir/<service>`` with mode 0755; ``unit_file``, if given, goes to
        /etc/systemd/system).
    :param health_url: polled by ``scripts/validate.sh`` until it answers 200.
    :param status_url: must report ``version`` (default: ``/status`` on the
        health URL's host); ``version_key`` is the JSON key holding it, ''
        for a plain-text body.
    :param migrations_dir: a local directory whose ``*.sql`` files are shipped
        under ``migrations/`` and applied once per deployment by
        ``scripts/migrate.sh`` (AfterInstall, before the install); connection
        settings come from ``pg_env_file`` on the instance
        (default ``/etc/<service>/migrate.env``).
    :param timeouts: overrides of :data:`DEFAULT_GO_TIMEOUTS` (appspec
        timeouts; ``validate`` defaults to ``validate_timeout + 30``).

    Hooks: ApplicationStop ``stop.sh``; AfterInstall ``migrate.sh`` (optional)
    then ``install.sh`` (.deb only); ApplicationStart ``start.sh``;
    ValidateService ``validate.sh``.  Raises :class:`BundleError` listing every
    bad parameter.
    """
    urls = {'health_url': health_url,
            'status_url': status_url if status_url else _status_url(str(health_url))}
    problems = _name_problems(service, version, urls, version_key)
    env_file = pg_env_file or '/etc/%s/migrate.env' % service
    problems += migration_setting_problems(migrations_table, env_file)
    if not isinstance(binary_dir, str) or not binary_dir.startswith('/'):
        problems.append('binary_dir %r must be an absolute path on the instance' % (binary_dir,))
    merged = _merged_timeouts(timeouts, validate_timeout, problems)
    for key, value in (('validate_timeout', validate_timeout), ('validate_interval', validate_interval)):
        problem = _seconds_problem(key, value)
        if problem:
            problems.append(problem)
    artifact_path = os.fspath(artifact) if artifact is not None else ''
    problems += _artifact_problems(artifact_path, unit_file)
    sql_files = _sql_files(migrations_dir, problems)
    if problems:
        raise BundleError(problems)
    return _lay_out(_GoService(
        service=service, version=version, artifact=artifact_path, health_url=urls['health_url'],
        status_url=urls['status_url'], version_key=version_key, migrations_dir=migrations_dir,
        sql_files=sql_files, env_file=env_file, migrations_table=migrations_table, binary_dir=binary_dir,
        unit_file=unit_file, validate_timeout=validate_timeout, validate_interval=validate_interval,
        timeouts=merged))


def go_service_bundle(service: str, version: str, artifact: Union[str, 'os.PathLike[str]'],
                      health_url: str, fmt: str = 'zip', mtime: Optional[int] = None,
                      **options: Any) -> BuiltBundle:
    """Build and validate the standard Go service bundle (see :func:`go_service_layout`).

    Raises :class:`BundleError` if the result does not pass ``validate_bundle``
    (it always should); its warnings (ApplicationStop runs the previous
    revision's script) are returned on the :class:`BuiltBundle`.
    """
    appspec_text, files = go_service_layout(service, version, artifact, health_url, **options)
    data = build_bundle(appspec_text, files, fmt=fmt, mtime=mtime)
    result = validate_bundle(data, fmt=fmt, os_family='linux')
    if result.problems:
        raise BundleError(result.problems)
    entries = [entry[0] for entry in bundle_entries(appspec_text, files)]
    return BuiltBundle(data=data, fmt=fmt, appspec=appspec_text, entries=entries, warnings=result.warnings)
