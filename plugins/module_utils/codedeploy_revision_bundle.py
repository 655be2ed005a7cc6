# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The revision bundle of ``codedeploy_revision``: from the ``bundle`` option to a file and to S3.

:func:`build_from_options` turns the module's ``bundle`` option (an appspec file, appspec
text, structured files/permissions/hooks, or the standard Go service bundle) into bundle
bytes plus the ``appspec.validate`` result of the bundle exactly as it would be uploaded.
:func:`write_bundle` stores it locally (only when its bytes changed), :func:`upload_bundle`
puts it in S3 through the ``s3_artifact`` logic.  Every failure is a
:class:`~errors.GoshipError`: ``BundleError``, :class:`BundleWriteError`,
:class:`BundleUploadError`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.goship.deploy.plugins.module_utils import aws
from ansible_collections.goship.deploy.plugins.module_utils import s3_artifact as s3_logic
from ansible_collections.goship.deploy.plugins.module_utils.appspec import Result
from ansible_collections.goship.deploy.plugins.module_utils.codedeploy import BUNDLE_TYPES
from ansible_collections.goship.deploy.plugins.module_utils.codedeploy_bundle import (
    BundleError,
    FileSpec,
    appspec_from_structure,
    build_bundle,
    bundle_entries,
    validate_bundle,
)
from ansible_collections.goship.deploy.plugins.module_utils.codedeploy_go_service import go_service_layout
from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError
from ansible_collections.goship.deploy.plugins.module_utils.file_ops import write_if_changed

__all__ = ['STRUCTURED_KEYS', 'GO_SERVICE_OPTIONS', 'BuiltRevision', 'BundleWriteError', 'BundleUploadError',
           'bundle_sources', 'check_bundle_options', 'build_from_options', 'write_bundle', 'bundle_file',
           'upload_bundle']

STRUCTURED_KEYS = ('files', 'permissions', 'hooks', 'file_exists_behavior')
GO_SERVICE_OPTIONS = ('status_url', 'version_key', 'migrations_dir', 'pg_env_file', 'migrations_table',
                      'binary_dir', 'unit_file', 'validate_timeout', 'validate_interval', 'timeouts')


class BundleWriteError(GoshipError, OSError):
    """The bundle could not be written to a local file.

    Also an ``OSError``, which :func:`write_bundle` always raised.
    """


class BundleUploadError(aws.AWSError):
    """The bundle could not be uploaded to S3 (``exc`` is the botocore exception, if any)."""


class BuiltRevision(object):
    """Bundle bytes, format, appspec text, entries and the validation :class:`appspec.Result`."""

    def __init__(self, data: bytes, fmt: str, appspec: str, entries: List[str], validation: Result):
        self.data = data
        self.fmt = fmt
        self.appspec = appspec
        self.entries = entries
        self.validation = validation
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.size = len(data)

    def to_dict(self, path: Optional[str] = None) -> Dict[str, Any]:
        return dict(path=path, format=self.fmt, sha256=self.sha256, size=self.size, entries=list(self.entries),
                    appspec=self.appspec)


def bundle_sources(options: Optional[Dict[str, Any]]) -> List[str]:
    """Which appspec sources the ``bundle`` option sets (exactly one is allowed)."""
    options = options or {}
    found = [name for name in ('appspec', 'appspec_content', 'go_service') if options.get(name) not in (None, '', {})]
    if any(options.get(name) not in (None, '', [], {}) for name in STRUCTURED_KEYS):
        found.append('structured')
    return found


def check_bundle_options(options: Optional[Dict[str, Any]]) -> List[str]:
    """Problems with the ``bundle`` option found before anything is read (list of messages)."""
    problems = []
    sources = bundle_sources(options)
    if not sources:
        problems.append('bundle needs one appspec source: appspec (a file), appspec_content, the structured '
                        'files/permissions/hooks, or go_service')
    elif len(sources) > 1:
        names = ['files/permissions/hooks/file_exists_behavior' if s == 'structured' else s for s in sources]
        problems.append('bundle takes one appspec source, got %s' % ' and '.join(names))
    if (options or {}).get('format') not in BUNDLE_TYPES:
        problems.append('bundle.format must be one of %s' % ', '.join(sorted(BUNDLE_TYPES)))
    return problems


def _content_files(content: Optional[List[Dict[str, Any]]]) -> List[FileSpec]:
    """``bundle.content`` items -> ``(source, path_in_bundle, mode)`` (directories recursed, sorted)."""
    files: List[FileSpec] = []
    problems = []
    for index, item in enumerate(content or []):
        src = item.get('src')
        if not src:
            problems.append('bundle.content[%d].src is required' % index)
            continue
        dest = (item.get('path') or os.path.basename(os.path.normpath(src))).strip('/')
        mode = item.get('mode')
        if os.path.isdir(src):
            for root, dirs, names in os.walk(src):
                dirs.sort()
                for name in sorted(names):
                    full = os.path.join(root, name)
                    rel = os.path.relpath(full, src).replace(os.sep, '/')
                    files.append((full, '%s/%s' % (dest, rel) if dest else rel, mode))
        elif os.path.isfile(src):
            if not dest:
                problems.append('bundle.content[%d].path is required for a file' % index)
                continue
            files.append((src, dest, mode))
        else:
            problems.append('bundle.content[%d].src %s does not exist (on the host running the module)'
                            % (index, src))
    if problems:
        raise BundleError(problems)
    return files


def _read_appspec(path: str) -> str:
    try:
        with open(path, 'rb') as handle:
            raw = handle.read()
    except OSError as exc:
        raise BundleError('bundle.appspec: cannot read %s: %s' % (path, exc.strerror or exc))
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise BundleError('bundle.appspec: %s is not UTF-8 text (%s)' % (path, exc))


def _appspec_and_files(options: Dict[str, Any]) -> Tuple[str, List[FileSpec], Optional[str]]:
    """The appspec text, the files and the os family implied by the one appspec source."""
    problems = check_bundle_options(options)
    if problems:
        raise BundleError(problems)
    files = _content_files(options.get('content'))
    source = bundle_sources(options)[0]
    if source == 'go_service':
        gs = dict(options['go_service'])
        extra = dict((name, gs[name]) for name in GO_SERVICE_OPTIONS if gs.get(name) is not None)
        appspec_text, go_files = go_service_layout(gs.get('service'), gs.get('version'), gs.get('artifact'),
                                                   gs.get('health_url'), **extra)
        return appspec_text, list(go_files) + files, 'linux'
    if source == 'appspec':
        return _read_appspec(options['appspec']), files, None
    if source == 'appspec_content':
        return options['appspec_content'], files, None
    appspec_text = appspec_from_structure(
        files=options.get('files'), permissions=options.get('permissions'), hooks=options.get('hooks'),
        file_exists_behavior=options.get('file_exists_behavior'), os_name=options.get('os') or 'linux')
    return appspec_text, files, None


def build_from_options(options: Dict[str, Any], os_family: Optional[str] = None) -> BuiltRevision:
    """Build and validate the bundle described by the module's ``bundle`` option.

    Returns a :class:`BuiltRevision` whose ``validation`` holds every problem and warning
    of the bundle as it would be uploaded (appspec.yml checked against the bundle's own
    files).  Raises ``BundleError`` ("cannot build the bundle: ...") for inputs that cannot
    be built at all (unreadable files, bad go_service parameters, conflicting paths).
    """
    fmt = options.get('format') or 'zip'
    try:
        appspec_text, files, implied_os = _appspec_and_files(options)
        data = build_bundle(appspec_text, files, fmt=fmt, mtime=options.get('mtime'))
        entries = [entry[0] for entry in bundle_entries(appspec_text, files)]
    except BundleError as exc:
        raise BundleError(exc.problems, message='cannot build the bundle: %s' % '; '.join(exc.problems)) from None
    validation = validate_bundle(data, fmt=fmt, os_family=os_family or implied_os)
    return BuiltRevision(data, fmt, appspec_text, entries, validation)


def write_bundle(path: str, data: bytes, check_mode: bool = False) -> bool:
    """Store the bundle at ``path`` (mode 0644) unless it already holds these bytes.

    :func:`file_ops.write_if_changed`: same bytes leave the file untouched (a wrong mode alone
    is fixed).  Missing parent directories are created.  Returns True when the file changed
    (or would change, in check mode).  Raises :class:`BundleWriteError`.
    """
    if os.path.isdir(path):
        raise BundleWriteError('bundle_path %s is a directory; name the bundle file' % path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        if not check_mode and not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        return write_if_changed(path, data, 0o644, check_mode=check_mode)
    except OSError as exc:
        raise BundleWriteError('cannot write the bundle to bundle_path %s: %s' % (path, exc.strerror or exc)) from exc


def bundle_file(built: BuiltRevision, path: Optional[str] = None, tmpdir: Optional[str] = None) -> str:
    """A file holding the bundle bytes: ``path`` (already written), else a temporary file in ``tmpdir``."""
    if path:
        return path
    try:
        handle, temp = tempfile.mkstemp(prefix='codedeploy_bundle_', suffix='.' + built.fmt, dir=tmpdir)
        with os.fdopen(handle, 'wb') as out:
            out.write(built.data)
    except OSError as exc:
        raise BundleWriteError('cannot write the bundle to a temporary file in %s: %s'
                               % (tmpdir or tempfile.gettempdir(), exc.strerror or exc)) from exc
    return temp


def upload_bundle(params: Dict[str, Any], bucket: str, key: str, path: str, metadata: Optional[Dict[str, str]] = None,
                  encryption: str = 'AES256', kms_key_id: Optional[str] = None) -> Dict[str, Any]:
    """Upload the bundle file ``path`` to s3://bucket/key with ``s3_artifact.upload`` (verified SHA-256).

    ``params`` are the S3 connection options.  Returns s3_artifact's result.  Its errors
    come out as :class:`BundleUploadError` (S3's wording from ``aws.describe_error``).
    """
    api = aws.AWSErrorHandler(params, service='S3')
    what = 'upload the bundle to s3://%s/%s' % (bucket, key)
    s3 = api.call('create the S3 client', aws.client, 's3', params)
    try:
        return api.call(what, s3_logic.upload, s3, bucket, key, path, metadata=metadata, encryption=encryption,
                        kms_key_id=kms_key_id)
    except s3_logic.S3Error as exc:
        msg = aws.describe_error(exc.exc, exc.what, bucket=exc.bucket, key=exc.key, version_id=exc.version_id,
                                 params=params, sse=encryption if encryption != 'none' else None)
        raise BundleUploadError(msg, exc=exc.exc, details={'error': aws.error_details(exc.exc)}) from exc
    except s3_logic.ArtifactError as exc:
        raise BundleUploadError(exc.msg) from exc
    except (OSError, EOFError) as exc:   # the file went away or shrank while it was being sent
        raise BundleUploadError('%s failed: cannot read %s: %s' % (what, path, getattr(exc, 'strerror', None) or exc)
                                ) from exc
