# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CodeDeploy revisions: bundle from options, deploy, wait, and one report of the rollout.

The logic behind ``goship.deploy.codedeploy_revision``.  No Ansible here: every function
takes a boto3 ``codedeploy`` client (or plain options) and returns plain dicts; AWS
failures are raised as :class:`CodeDeployError` whose ``msg`` is already a sentence a
person can act on (see :func:`describe_error`).

Pieces
------
* :func:`build_from_options` turns the module's ``bundle`` option (an appspec file,
  appspec text, structured files/permissions/hooks, or the standard Go service layout of
  ``codedeploy_bundle``) into bundle bytes plus the :func:`appspec.validate` result of
  the bundle exactly as it would be uploaded.  :func:`write_bundle` stores it locally,
  only when its bytes changed.
* :func:`s3_revision`, :func:`create_deployment_args`, :func:`normalize_auto_rollback`:
  the request shapes of CreateDeployment / RegisterApplicationRevision.
* :func:`ensure_application`, :func:`ensure_deployment_group`, :func:`register_revision`,
  :func:`find_current_deployment`, :func:`create_deployment`: one API call each (or a
  read then a write), errors mapped.
* :func:`wait_for_deployment`: polls GetDeployment until Succeeded, Failed or Stopped or
  until ``timeout`` seconds have passed (bounded in time *and* in number of polls).
* :func:`summarize` / :func:`build_summary` / :func:`format_summary`: one summary of the
  whole rollout: per instance its status, every lifecycle event's status and duration,
  for failures the script, error code, message and log tail; overall counts; rollback
  info.  Targets come from ListDeploymentTargets + BatchGetDeploymentTargets, or from
  the older ListDeploymentInstances + BatchGetDeploymentInstances where the newer pair
  is missing.  Per-instance details are best effort: when they cannot be read the
  summary says why and still carries the deployment's own status and counts.

Endpoints that lack an operation
--------------------------------
moto (the lab's CodeDeploy API) answers operations it does not implement
(RegisterApplicationRevision, ListDeploymentTargets, ...) with an HTTP 500 HTML page;
real services answer ``UnknownOperationException`` or 501.  :func:`client_for` makes the
client give up on such answers at once instead of retrying them as server errors, and
:func:`is_not_implemented` recognises them, so the module can say "this endpoint does not
implement X" instead of "server error after 5 retries".  moto also never moves a
deployment past ``Created``: waiting then ends at ``timeout`` with the last status seen.
"""

from __future__ import annotations

import hashlib
import os
import time

from ansible_collections.goship.deploy.plugins.module_utils import aws
from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_bundle as cb
from ansible_collections.goship.deploy.plugins.module_utils.file_ops import write_if_changed

ClientError = aws.ClientError
BotoCoreError = aws.BotoCoreError

#: Statuses after which a deployment never changes again.
FINAL_STATUSES = ('Succeeded', 'Failed', 'Stopped')
#: Built-in deployment configurations for EC2/on-premises.
DEFAULT_CONFIGS = ('CodeDeployDefault.OneAtATime', 'CodeDeployDefault.HalfAtATime',
                   'CodeDeployDefault.AllAtOnce')
AUTO_ROLLBACK_EVENTS = ('DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_ALARM', 'DEPLOYMENT_STOP_ON_REQUEST')
FILE_EXISTS_BEHAVIORS = ('DISALLOW', 'OVERWRITE', 'RETAIN')
TAG_FILTER_TYPES = ('KEY_AND_VALUE', 'KEY_ONLY', 'VALUE_ONLY')
BUNDLE_TYPES = {'zip': 'zip', 'tgz': 'tgz', 'tar': 'tar'}
#: Most ids BatchGetDeploymentTargets / BatchGetDeploymentInstances take per call.
BATCH_SIZE = 25
#: Most pages read from a List* call (25+ targets each): bounds every listing loop.
MAX_PAGES = 200
#: Lines of a script's log tail shown per failed instance in the text report.
LOG_TAIL_LINES = 20

_NOT_IMPLEMENTED_CODES = {'NotImplemented', 'NotImplementedException', '501', 'UnknownOperationException',
                          'UnknownOperation', 'InvalidAction', 'UnsupportedOperation',
                          'UnsupportedOperationException'}
_ACCESS_DENIED = {'AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', '403', 'Forbidden',
                  'AuthorizationError'}
_CREDENTIAL_CODES = {'InvalidAccessKeyId', 'UnrecognizedClientException', 'InvalidClientTokenId', 'AuthFailure',
                     'SignatureDoesNotMatch', 'InvalidSignatureException', 'ExpiredToken', 'ExpiredTokenException',
                     'InvalidToken', 'RequestExpired', 'Throttling', 'ThrottlingException',
                     'TooManyRequestsException', 'RequestLimitExceeded'}
_INVALID_INPUT_CODES = {
    'InvalidAutoRollbackConfigException': 'auto_rollback',
    'InvalidFileExistsBehaviorException': 'file_exists_behavior',
    'InvalidDeploymentConfigNameException': 'deployment_config_name',
    'InvalidTagException': 'ensure_deployment_group.ec2_tag_filters',
    'InvalidEC2TagException': 'ensure_deployment_group.ec2_tag_filters',
    'InvalidEC2TagCombinationException': 'ensure_deployment_group (ec2_tag_filters and ec2_tag_set together)',
    'InvalidTagFilterException': 'ensure_deployment_group.ec2_tag_filters',
    'InvalidApplicationNameException': 'application',
    'InvalidDeploymentGroupNameException': 'deployment_group',
    'InvalidBucketNameFilterException': 'bucket',
    'InvalidKeyPrefixFilterException': 'key',
    'DescriptionTooLongException': 'description',
    'InvalidIgnoreApplicationStopFailuresValueException': 'ignore_application_stop_failures',
}


# ---------------------------------------------------------------------------------------------
# Errors


class CodeDeployError(Exception):
    """A failure with a complete message (``msg``) and machine-readable ``details``.

    ``exc`` is the botocore exception behind it, if any (its code, HTTP status and request
    id go into the module result through ``aws.error_details``).
    """

    def __init__(self, msg, exc=None, **details):
        super(CodeDeployError, self).__init__(msg)
        self.msg = msg
        self.exc = exc
        self.details = details


class NotImplementedByEndpoint(CodeDeployError):
    """The endpoint does not implement the operation (moto, a partial emulator, ...)."""


class WaitTimeout(CodeDeployError):
    """The deployment did not reach a final status within the timeout (``details['summary']``)."""


class DeploymentFailed(CodeDeployError):
    """The deployment ended Failed or Stopped (``details['summary']``)."""


def is_not_implemented(exc):
    """True when ``exc`` says the endpoint does not implement the operation at all.

    Recognises 501 / ``NotImplemented`` / ``UnknownOperationException`` answers, and the
    HTTP 500 HTML error page moto's server sends for operations it lacks (an AWS JSON API
    never answers with HTML).  ``NotImplementedError`` covers moto used in-process.
    """
    if isinstance(exc, NotImplementedError):
        return True
    response = getattr(exc, 'response', None)
    if not isinstance(response, dict):
        return False
    code = str(response.get('Error', {}).get('Code') or '')
    if code in _NOT_IMPLEMENTED_CODES:
        return True
    meta = response.get('ResponseMetadata', {}) or {}
    status = meta.get('HTTPStatusCode')
    if status == 501:
        return True
    if status == 500:
        headers = dict((str(k).lower(), v) for k, v in (meta.get('HTTPHeaders') or {}).items())
        message = str(response.get('Error', {}).get('Message') or '').lstrip().lower()
        return 'text/html' in str(headers.get('content-type', '')).lower() or message.startswith(('<!doctype', '<html'))
    return False


def _stop_retrying_unimplemented(response=None, operation=None, **kwargs):
    """``needs-retry`` handler: an HTML 500 or a 501 will not get better by retrying it.

    botocore's standard retry mode retries every HTTP 500 with backoff, which turns moto's
    "not implemented" page into half a minute of waiting.  Raising the parsed error here
    ends the retry loop at once (the same technique as aws._limit_connect_attempts).
    """
    if not response or operation is None:
        return None
    http_response, parsed = response
    status = getattr(http_response, 'status_code', None)
    if status not in (500, 501):
        return None
    content_type = str((getattr(http_response, 'headers', None) or {}).get('content-type', '')).lower()
    if status == 501 or 'text/html' in content_type:
        raise ClientError(parsed, operation.name)
    return None


def client_for(params, service='codedeploy'):
    """``aws.client(service, params)`` that does not retry "not implemented" answers."""
    conn = aws.client(service, params)
    conn.meta.events.register_first('needs-retry', _stop_retrying_unimplemented,
                                    unique_id='goship-stop-retrying-unimplemented')
    return conn


def describe_error(exc, what, params=None, operation=None, endpoint=None, application=None,
                   deployment_group=None, hint=None):
    """One actionable sentence for a failed CodeDeploy call.

    ``what`` says what was being done; ``operation`` is the API operation name (taken
    from the exception when not given); ``endpoint`` the URL the client talked to.
    Connection, credential, region and throttling problems are worded by
    ``aws.describe_error``; CodeDeploy's own error codes are explained here.
    """
    operation = operation or getattr(exc, 'operation_name', None) or 'the operation'
    endpoint = endpoint or (params or {}).get('endpoint_url') or 'the AWS endpoint'
    if is_not_implemented(exc):
        msg = ('%s failed: %s is not implemented by the CodeDeploy endpoint %s' % (what, operation, endpoint))
        if isinstance(exc, NotImplementedError):
            msg += ' (%s)' % exc
        elif (getattr(exc, 'response', None) or {}).get('ResponseMetadata', {}).get('HTTPStatusCode') == 500:
            msg += (' (it answered HTTP 500 with an HTML error page, which is how moto answers operations it '
                    'lacks)')
        return msg + (': %s' % hint if hint else '') + aws.details_suffix(exc)
    if not isinstance(exc, ClientError):
        return aws.describe_error(exc, what, params=params, service='CodeDeploy')
    code = aws.error_code(exc) or ''
    message = (exc.response or {}).get('Error', {}).get('Message') or ''
    status = (exc.response or {}).get('ResponseMetadata', {}).get('HTTPStatusCode')
    suffix = aws.details_suffix(exc)
    location = aws.where(params)
    if code in _CREDENTIAL_CODES:
        return aws.describe_error(exc, what, params=params, service='CodeDeploy')
    if code == 'ApplicationDoesNotExistException':
        return ('%s failed: application %s does not exist in %s: create it (ensure_application: true) or '
                'check application%s' % (what, application or '?', location, suffix))
    if code == 'DeploymentGroupDoesNotExistException':
        return ('%s failed: deployment group %s of application %s does not exist in %s: create it '
                '(ensure_deployment_group) or check deployment_group%s'
                % (what, deployment_group or '?', application or '?', location, suffix))
    if code == 'DeploymentConfigDoesNotExistException':
        return ('%s failed: %s: use one of %s or create the custom deployment configuration first%s'
                % (what, message or 'the deployment configuration does not exist', ', '.join(DEFAULT_CONFIGS),
                   suffix))
    if code in ('InvalidRoleException', 'RoleRequiredException'):
        return ('%s failed: %s: service_role_arn must be an IAM role that trusts codedeploy.amazonaws.com and '
                'has the AWSCodeDeployRole policy%s' % (what, message or 'the service role is not valid', suffix))
    if code in ('DeploymentLimitExceededException', 'DeploymentAlreadyStartedException'):
        return ('%s failed: %s: a deployment group runs one deployment at a time; wait for the active one '
                '(or stop it) and run the task again%s' % (what, message or code, suffix))
    if code in ('RevisionDoesNotExistException', 'InvalidRevisionException', 'RevisionRequiredException'):
        return ('%s failed: %s: check bucket, key and that CodeDeploy may read the object%s'
                % (what, message or 'the revision is not valid', suffix))
    if code in ('DeploymentDoesNotExistException', 'InvalidDeploymentIdException'):
        return '%s failed: %s in %s%s' % (what, message or 'the deployment does not exist', location, suffix)
    if code in _INVALID_INPUT_CODES:
        return '%s failed: %s was refused: %s%s' % (what, _INVALID_INPUT_CODES[code], message or code, suffix)
    if code in _ACCESS_DENIED:
        action = 'codedeploy:%s' % operation if operation != 'the operation' else 'the CodeDeploy action'
        return ('%s failed: access denied for %s: allow %s on application %s in its IAM policy%s'
                % (what, aws.who(params), action, application or '?', suffix))
    if (status and int(status) >= 500) or code in ('InternalFailure', 'InternalError', 'ServiceUnavailable'):
        retries = (params or {}).get('retries')
        return ('%s failed: %s answered with a server error after %d retries: retry later%s'
                % (what, endpoint, 5 if retries is None else retries, suffix))
    detail = message if message and message != code else (code or 'unknown error')
    return '%s failed: %s%s' % (what, detail, suffix)


def _call(client, method, what, params=None, application=None, deployment_group=None, hint=None, **kwargs):
    """``client.<method>(**kwargs)``; botocore failures become :class:`CodeDeployError`."""
    try:
        return getattr(client, method)(**kwargs)
    except (ClientError, BotoCoreError, NotImplementedError) as exc:
        operation = getattr(exc, 'operation_name', None) or _operation_name(client, method)
        msg = describe_error(exc, what, params=params, operation=operation, endpoint=client.meta.endpoint_url,
                             application=application, deployment_group=deployment_group, hint=hint)
        cls = NotImplementedByEndpoint if is_not_implemented(exc) else CodeDeployError
        raise cls(msg, exc=exc, operation=operation)


def _operation_name(client, method):
    try:
        return client.meta.method_to_api_mapping.get(method) or method
    except AttributeError:
        return method


# ---------------------------------------------------------------------------------------------
# Bundles from the module's options

STRUCTURED_KEYS = ('files', 'permissions', 'hooks', 'file_exists_behavior')
GO_SERVICE_OPTIONS = ('status_url', 'version_key', 'migrations_dir', 'pg_env_file', 'migrations_table',
                      'binary_dir', 'unit_file', 'validate_timeout', 'validate_interval', 'timeouts')


class BuiltRevision(object):
    """Bundle bytes, format, appspec text, entries and the validation :class:`appspec.Result`."""

    def __init__(self, data, fmt, appspec, entries, validation):
        self.data = data
        self.fmt = fmt
        self.appspec = appspec
        self.entries = entries
        self.validation = validation
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.size = len(data)

    def to_dict(self, path=None):
        return dict(path=path, format=self.fmt, sha256=self.sha256, size=self.size, entries=list(self.entries),
                    appspec=self.appspec)


def bundle_sources(options):
    """Which appspec sources the ``bundle`` option sets (exactly one is allowed)."""
    options = options or {}
    found = [name for name in ('appspec', 'appspec_content', 'go_service') if options.get(name) not in (None, '', {})]
    if any(options.get(name) not in (None, '', [], {}) for name in STRUCTURED_KEYS):
        found.append('structured')
    return found


def check_bundle_options(options):
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


def _content_files(content):
    """``bundle.content`` items -> ``(source, path_in_bundle, mode)`` (directories recursed, sorted)."""
    files = []
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
        raise cb.BundleError(problems)
    return files


def _read_appspec(path):
    try:
        with open(path, 'rb') as handle:
            raw = handle.read()
    except OSError as exc:
        raise cb.BundleError('bundle.appspec: cannot read %s: %s' % (path, exc.strerror or exc))
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise cb.BundleError('bundle.appspec: %s is not UTF-8 text (%s)' % (path, exc))


def build_from_options(options, os_family=None):
    """Build and validate the bundle described by the module's ``bundle`` option.

    Returns a :class:`BuiltRevision` whose ``validation`` holds every problem and warning
    of the bundle as it would be uploaded (appspec.yml checked against the bundle's own
    files).  Raises ``codedeploy_bundle.BundleError`` for inputs that cannot be built at
    all (unreadable files, bad go_service parameters, conflicting paths).
    """
    problems = check_bundle_options(options)
    if problems:
        raise cb.BundleError(problems)
    fmt = options.get('format') or 'zip'
    files = _content_files(options.get('content'))
    source = bundle_sources(options)[0]
    if source == 'go_service':
        gs = dict(options['go_service'])
        extra = dict((name, gs[name]) for name in GO_SERVICE_OPTIONS if gs.get(name) is not None)
        appspec_text, go_files = cb.go_service_layout(gs.get('service'), gs.get('version'), gs.get('artifact'),
                                                      gs.get('health_url'), **extra)
        files = list(go_files) + files
        os_family = os_family or 'linux'
    elif source == 'appspec':
        appspec_text = _read_appspec(options['appspec'])
    elif source == 'appspec_content':
        appspec_text = options['appspec_content']
    else:
        appspec_text = cb.appspec_from_structure(
            files=options.get('files'), permissions=options.get('permissions'), hooks=options.get('hooks'),
            file_exists_behavior=options.get('file_exists_behavior'), os_name=options.get('os') or 'linux')
    data = cb.build_bundle(appspec_text, files, fmt=fmt, mtime=options.get('mtime'))
    validation = cb.validate_bundle(data, fmt=fmt, os_family=os_family)
    entries = [entry[0] for entry in cb.bundle_entries(appspec_text, files)]
    return BuiltRevision(data, fmt, appspec_text, entries, validation)


def write_bundle(path, data, check_mode=False):
    """Store the bundle at ``path`` (mode 0644) unless it already holds these bytes.

    :func:`file_ops.write_if_changed`: same bytes leave the file untouched (a wrong mode alone
    is fixed).  Missing parent directories are created.  Returns True when the file changed
    (or would change, in check mode).  Raises ``OSError``.
    """
    if os.path.isdir(path):
        raise OSError('bundle_path %s is a directory; name the bundle file' % path)
    directory = os.path.dirname(os.path.abspath(path))
    if not check_mode and not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    return write_if_changed(path, data, 0o644, check_mode=check_mode)


# ---------------------------------------------------------------------------------------------
# Request shapes


def s3_revision(bucket, key, bundle_type, version=None, etag=None):
    """A ``RevisionLocation`` of type S3.  ``version`` and ``eTag`` are left out when unknown."""
    location = dict(bucket=bucket, key=key, bundleType=BUNDLE_TYPES.get(bundle_type, bundle_type))
    if version and version != 'null':
        location['version'] = version
    if etag:
        location['eTag'] = etag.strip('"')
    return dict(revisionType='S3', s3Location=location)


def revision_text(revision):
    """``s3://bucket/key (zip, version V, etag E)`` for messages."""
    location = (revision or {}).get('s3Location') or {}
    if not location:
        return (revision or {}).get('revisionType') or 'unknown revision'
    extras = [location.get('bundleType') or '?']
    if location.get('version'):
        extras.append('version %s' % location['version'])
    if location.get('eTag'):
        extras.append('etag %s' % location['eTag'])
    return 's3://%s/%s (%s)' % (location.get('bucket'), location.get('key'), ', '.join(extras))


def same_revision(one, other):
    """True when two S3 revisions name the same object version (eTag compared when both have one)."""
    first = (one or {}).get('s3Location') or {}
    second = (other or {}).get('s3Location') or {}
    if not first or not second:
        return False
    for name in ('bucket', 'key', 'bundleType', 'version'):
        if (first.get(name) or None) != (second.get(name) or None):
            return False
    if first.get('eTag') and second.get('eTag'):
        return first['eTag'].strip('"') == second['eTag'].strip('"')
    return True


def normalize_auto_rollback(value):
    """The ``auto_rollback`` option as an ``AutoRollbackConfiguration`` (or None when unset).

    ``{enabled: true}`` without events means ``[DEPLOYMENT_FAILURE]``.  Raises ValueError.
    """
    if value is None:
        return None
    enabled = value.get('enabled')
    enabled = True if enabled is None else bool(enabled)
    events = list(value.get('events') or [])
    unknown = [event for event in events if event not in AUTO_ROLLBACK_EVENTS]
    if unknown:
        raise ValueError('auto_rollback.events: unknown event %s (known: %s)'
                         % (', '.join(map(str, unknown)), ', '.join(AUTO_ROLLBACK_EVENTS)))
    if enabled and not events:
        events = ['DEPLOYMENT_FAILURE']
    config = dict(enabled=enabled)
    if events:
        config['events'] = events
    return config


def create_deployment_args(application, deployment_group, revision, deployment_config_name=None,
                           description=None, auto_rollback=None, file_exists_behavior=None,
                           ignore_application_stop_failures=None):
    """Keyword arguments of ``create_deployment``; unset options are left out (the group's apply)."""
    args = dict(applicationName=application, deploymentGroupName=deployment_group, revision=revision)
    if deployment_config_name:
        args['deploymentConfigName'] = deployment_config_name
    if description:
        args['description'] = description
    rollback = normalize_auto_rollback(auto_rollback)
    if rollback is not None:
        args['autoRollbackConfiguration'] = rollback
    if file_exists_behavior:
        if file_exists_behavior not in FILE_EXISTS_BEHAVIORS:
            raise ValueError('file_exists_behavior must be one of %s' % ', '.join(FILE_EXISTS_BEHAVIORS))
        args['fileExistsBehavior'] = file_exists_behavior
    if ignore_application_stop_failures is not None:
        args['ignoreApplicationStopFailures'] = bool(ignore_application_stop_failures)
    return args


def tag_filters(filters, label='ec2_tag_filters'):
    """``[{key, value, type}]`` -> CodeDeploy ``EC2TagFilter`` list.  Raises ValueError."""
    result = []
    for index, item in enumerate(filters or []):
        if not isinstance(item, dict):
            raise ValueError('%s[%d] must be a mapping with key, value and type' % (label, index))
        key, value = item.get('key', item.get('Key')), item.get('value', item.get('Value'))
        kind = item.get('type', item.get('Type')) or ('KEY_AND_VALUE' if key and value is not None
                                                      else 'KEY_ONLY' if key else 'VALUE_ONLY')
        if kind not in TAG_FILTER_TYPES:
            raise ValueError('%s[%d].type must be one of %s' % (label, index, ', '.join(TAG_FILTER_TYPES)))
        if kind in ('KEY_AND_VALUE', 'KEY_ONLY') and not key:
            raise ValueError('%s[%d].key is required with type %s' % (label, index, kind))
        if kind in ('KEY_AND_VALUE', 'VALUE_ONLY') and value in (None, ''):
            raise ValueError('%s[%d].value is required with type %s' % (label, index, kind))
        entry = dict(Type=kind)
        if kind != 'VALUE_ONLY':
            entry['Key'] = str(key)
        if kind != 'KEY_ONLY':
            entry['Value'] = str(value)
        result.append(entry)
    return result


def tag_set(groups):
    """``[[filter, ...], ...]`` -> ``EC2TagSet`` (instances must match one filter of EVERY group)."""
    if not groups:
        return None
    if len(groups) > 3:
        raise ValueError('ec2_tag_set takes at most 3 groups (a CodeDeploy limit)')
    result = []
    for index, group in enumerate(groups):
        if not isinstance(group, list) or not group:
            raise ValueError('ec2_tag_set[%d] must be a non-empty list of tag filters' % index)
        result.append(tag_filters(group, 'ec2_tag_set[%d]' % index))
    return dict(ec2TagSetList=result)


# ---------------------------------------------------------------------------------------------
# Applications, groups, revisions, deployments


def ensure_application(client, application, params=None, check_mode=False):
    """Create the application (compute platform Server) when it does not exist; True if created."""
    what = 'look up CodeDeploy application %s' % application
    try:
        client.get_application(applicationName=application)
        return False
    except ClientError as exc:
        if aws.error_code(exc) != 'ApplicationDoesNotExistException':
            raise CodeDeployError(describe_error(exc, what, params, endpoint=client.meta.endpoint_url,
                                                 application=application), exc=exc)
    except (BotoCoreError, NotImplementedError) as exc:
        raise CodeDeployError(describe_error(exc, what, params, endpoint=client.meta.endpoint_url,
                                             application=application), exc=exc)
    if check_mode:
        return True
    try:
        client.create_application(applicationName=application, computePlatform='Server')
    except ClientError as exc:
        if aws.error_code(exc) == 'ApplicationAlreadyExistsException':
            return False   # created meanwhile by someone else
        raise CodeDeployError(describe_error(exc, 'create CodeDeploy application %s' % application, params,
                                             endpoint=client.meta.endpoint_url, application=application), exc=exc)
    except (BotoCoreError, NotImplementedError) as exc:
        raise CodeDeployError(describe_error(exc, 'create CodeDeploy application %s' % application, params,
                                             endpoint=client.meta.endpoint_url, application=application), exc=exc)
    return True


def get_deployment_group(client, application, deployment_group, params=None):
    """``deploymentGroupInfo``, or None when the group (or its application) does not exist."""
    what = 'look up deployment group %s of %s' % (deployment_group, application)
    try:
        response = client.get_deployment_group(applicationName=application, deploymentGroupName=deployment_group)
        return response.get('deploymentGroupInfo') or dict(deploymentGroupName=deployment_group)
    except ClientError as exc:
        if aws.error_code(exc) == 'DeploymentGroupDoesNotExistException':
            return None
        raise CodeDeployError(describe_error(exc, what, params, endpoint=client.meta.endpoint_url,
                                             application=application, deployment_group=deployment_group), exc=exc)
    except (BotoCoreError, NotImplementedError) as exc:
        raise CodeDeployError(describe_error(exc, what, params, endpoint=client.meta.endpoint_url,
                                             application=application, deployment_group=deployment_group), exc=exc)


def ensure_deployment_group(client, application, deployment_group, spec, params=None, check_mode=False):
    """Create the deployment group from ``spec`` when it does not exist.

    ``spec``: service_role_arn, ec2_tag_filters, ec2_tag_set, deployment_config_name.  An
    existing group is never changed; differences to ``spec`` come back as warnings.
    Returns ``(created, warnings, info)`` where ``info`` is the existing group's
    ``deploymentGroupInfo`` (None when it was created).
    """
    filters = tag_filters(spec.get('ec2_tag_filters'))
    tagset = tag_set(spec.get('ec2_tag_set'))
    current = get_deployment_group(client, application, deployment_group, params)
    if current is not None:
        warnings = []
        if spec.get('service_role_arn') and current.get('serviceRoleArn') not in (None, spec['service_role_arn']):
            warnings.append('deployment group %s uses service role %s, not %s; it was not changed'
                            % (deployment_group, current.get('serviceRoleArn'), spec['service_role_arn']))
        have = sorted(tuple(sorted(f.items())) for f in current.get('ec2TagFilters') or [])
        if filters and have != sorted(tuple(sorted(f.items())) for f in filters):
            warnings.append('deployment group %s selects instances by other ec2TagFilters (%s); it was not changed'
                            % (deployment_group, current.get('ec2TagFilters')))
        if tagset and (current.get('ec2TagSet') or {}).get('ec2TagSetList') != tagset['ec2TagSetList']:
            warnings.append('deployment group %s selects instances by another ec2TagSet (%s); it was not changed'
                            % (deployment_group, current.get('ec2TagSet')))
        return False, warnings, current
    if check_mode:
        return True, [], None
    args = dict(applicationName=application, deploymentGroupName=deployment_group,
                serviceRoleArn=spec['service_role_arn'])
    if filters:
        args['ec2TagFilters'] = filters
    if tagset:
        args['ec2TagSet'] = tagset
    if spec.get('deployment_config_name'):
        args['deploymentConfigName'] = spec['deployment_config_name']
    what = 'create deployment group %s of %s' % (deployment_group, application)
    try:
        client.create_deployment_group(**args)
    except ClientError as exc:
        if aws.error_code(exc) == 'DeploymentGroupAlreadyExistsException':
            return False, [], None
        raise CodeDeployError(describe_error(exc, what, params, endpoint=client.meta.endpoint_url,
                                             application=application, deployment_group=deployment_group), exc=exc)
    except (BotoCoreError, NotImplementedError) as exc:
        raise CodeDeployError(describe_error(exc, what, params, endpoint=client.meta.endpoint_url,
                                             application=application, deployment_group=deployment_group), exc=exc)
    return True, [], None


REGISTER_HINT = ('set register: false (create_deployment does not need a registered revision; registering only '
                 'lists it under the application in the console)')


def register_revision(client, application, revision, description=None, params=None):
    """Register ``revision`` with the application unless it already is; True when registered now.

    The lookup (GetApplicationRevision) is only an optimisation: when the endpoint does not
    implement it, the registration is attempted anyway, so the error (if any) names the
    operation that matters, RegisterApplicationRevision.
    """
    what = 'register the revision %s with application %s' % (revision_text(revision), application)
    try:
        client.get_application_revision(applicationName=application, revision=revision)
        return False
    except (ClientError, BotoCoreError, NotImplementedError) as exc:
        if not is_not_implemented(exc) and aws.error_code(exc) != 'RevisionDoesNotExistException':
            raise CodeDeployError(describe_error(exc, what, params, endpoint=client.meta.endpoint_url,
                                                 application=application), exc=exc)
    kwargs = dict(applicationName=application, revision=revision)
    if description:
        kwargs['description'] = description
    _call(client, 'register_application_revision', what, params, application=application, hint=REGISTER_HINT,
          **kwargs)
    return True


def get_deployment(client, deployment_id, params=None):
    """``deploymentInfo`` of one deployment."""
    response = _call(client, 'get_deployment', 'read deployment %s' % deployment_id, params,
                     deploymentId=deployment_id)
    return response.get('deploymentInfo') or {}


def find_current_deployment(client, application, deployment_group, revision, params=None, group_info=None):
    """The group's last attempted deployment when it is of ``revision`` and not failed/stopped.

    That is what makes ``state=deployed`` idempotent: the same revision that already
    succeeded (or is being deployed right now) is not deployed again.  Returns the
    ``deploymentInfo`` or None.
    """
    info = group_info if group_info is not None else get_deployment_group(client, application, deployment_group,
                                                                          params)
    last = ((info or {}).get('lastAttemptedDeployment') or {}).get('deploymentId')
    if not last:
        return None
    deployment = get_deployment(client, last, params)
    if deployment.get('status') in ('Failed', 'Stopped'):
        return None
    if not same_revision(deployment.get('revision'), revision):
        return None
    return deployment


def create_deployment(client, args, params=None):
    """``create_deployment(**args)`` -> the new deployment id."""
    what = 'create a deployment of %s to %s/%s' % (
        revision_text(args.get('revision')), args.get('applicationName'), args.get('deploymentGroupName'))
    response = _call(client, 'create_deployment', what, params, application=args.get('applicationName'),
                     deployment_group=args.get('deploymentGroupName'), **args)
    return response['deploymentId']


def wait_for_deployment(client, deployment_id, timeout, interval, params=None, clock=time.monotonic,
                        sleep=time.sleep):
    """Poll GetDeployment until a final status or ``timeout`` seconds; ``(info, timed_out, polls)``.

    Bounded twice: by the clock and by ``timeout / interval + 2`` polls, so a clock that
    misbehaves cannot make it loop forever.  Each poll can add one request's duration
    (at most the client's read timeout) beyond ``timeout``.
    """
    interval = max(float(interval), 0.1)
    timeout = max(float(timeout), 0.0)
    deadline = clock() + timeout
    max_polls = int(timeout / interval) + 2
    polls = 0
    info = {}
    while True:
        info = get_deployment(client, deployment_id, params)
        polls += 1
        if info.get('status') in FINAL_STATUSES:
            return info, False, polls
        remaining = deadline - clock()
        if remaining <= 0 or polls >= max_polls:
            return info, True, polls
        sleep(min(interval, remaining))


# ---------------------------------------------------------------------------------------------
# Targets and the summary


def _chunks(items, size):
    return [items[start:start + size] for start in range(0, len(items), size)]


def _list_all(client, method, result_key, what, params, **kwargs):
    ids = []
    token = None
    for _page in range(MAX_PAGES):
        if token:
            kwargs['nextToken'] = token
        response = _call(client, method, what, params, **kwargs)
        ids.extend(response.get(result_key) or [])
        token = response.get('nextToken')
        if not token:
            break
    return ids


def _list_and_read(client, deployment_id, params, noun, list_op, list_key, batch_op, ids_param, result_key):
    """List every id of the deployment's ``noun`` with ``list_op``, then read them in batches."""
    ids = _list_all(client, list_op, list_key, 'list the %s of deployment %s' % (noun, deployment_id), params,
                    deploymentId=deployment_id)
    items = []
    for chunk in _chunks(ids, BATCH_SIZE):
        response = _call(client, batch_op, 'read the %s of deployment %s' % (noun, deployment_id), params,
                         deploymentId=deployment_id, **{ids_param: chunk})
        items.extend(response.get(result_key) or [])
    return items


def list_targets(client, deployment_id, params=None):
    """Every target of the deployment: ``(targets, source, note)``.

    ``source`` is ``targets`` (BatchGetDeploymentTargets shapes), ``instances``
    (BatchGetDeploymentInstances shapes, used when the endpoint lacks the newer pair) or
    None with ``note`` saying why no per-instance details are available.
    """
    try:
        targets = _list_and_read(client, deployment_id, params, 'targets', 'list_deployment_targets', 'targetIds',
                                 'batch_get_deployment_targets', 'targetIds', 'deploymentTargets')
        return targets, 'targets', None
    except NotImplementedByEndpoint:
        pass
    except CodeDeployError as exc:
        if aws.error_code(exc.exc) == 'DeploymentNotStartedException':
            return [], None, 'the deployment has not started on any instance yet'
        return [], None, exc.msg
    try:
        instances = _list_and_read(client, deployment_id, params, 'instances', 'list_deployment_instances',
                                   'instancesList', 'batch_get_deployment_instances', 'instanceIds',
                                   'instancesSummary')
        return instances, 'instances', None
    except NotImplementedByEndpoint:
        return [], None, ('no per-instance details: the endpoint %s implements neither ListDeploymentTargets '
                          'nor ListDeploymentInstances' % client.meta.endpoint_url)
    except CodeDeployError as exc:
        if aws.error_code(exc.exc) == 'DeploymentNotStartedException':
            return [], None, 'the deployment has not started on any instance yet'
        return [], None, exc.msg


def _iso(value):
    return value.isoformat() if hasattr(value, 'isoformat') else value


def _duration(start, end):
    if hasattr(start, 'timestamp') and hasattr(end, 'timestamp'):
        return round((end - start).total_seconds(), 3)
    if isinstance(start, (int, float)) and isinstance(end, (int, float)):
        return round(end - start, 3)
    return None


def summarize_event(event):
    """One LifecycleEvent: name, status, start, end, duration_s and its diagnostics."""
    diagnostics = event.get('diagnostics') or {}
    return dict(
        name=event.get('lifecycleEventName'),
        status=event.get('status'),
        start=_iso(event.get('startTime')),
        end=_iso(event.get('endTime')),
        duration_s=_duration(event.get('startTime'), event.get('endTime')),
        error_code=diagnostics.get('errorCode') or None,
        script_name=diagnostics.get('scriptName') or None,
        message=diagnostics.get('message') or None,
        log_tail=diagnostics.get('logTail') or None,
    )


def _target_body(target):
    """(kind, body) of a DeploymentTarget, or ('InstanceSummary', target) for the older shape."""
    for kind, field in (('InstanceTarget', 'instanceTarget'), ('LambdaTarget', 'lambdaTarget'),
                        ('ECSTarget', 'ecsTarget'), ('CloudFormationTarget', 'cloudFormationTarget')):
        if target.get(field):
            return target.get('deploymentTargetType') or kind, target[field]
    return 'InstanceSummary', target


def summarize_target(target):
    """One instance (DeploymentTarget or the older InstanceSummary) of the summary."""
    kind, body = _target_body(target)
    raw_id = body.get('targetId') or body.get('instanceId') or ''
    instance_id = raw_id.rsplit('/', 1)[-1] if raw_id.startswith('arn:') else raw_id
    arn = body.get('targetArn') or (raw_id if raw_id.startswith('arn:') else None)
    events = [summarize_event(event) for event in body.get('lifecycleEvents') or []]
    failure = None
    for event in events:
        if event['status'] == 'Failed':
            failure = dict(event=event['name'], error_code=event['error_code'], script_name=event['script_name'],
                           message=event['message'], log_tail=event['log_tail'])
            break
    starts = [ev['startTime'] for ev in body.get('lifecycleEvents') or [] if ev.get('startTime') is not None]
    ends = [ev['endTime'] for ev in body.get('lifecycleEvents') or [] if ev.get('endTime') is not None]
    first = min(starts) if starts else None
    last = max(ends) if ends else None
    return dict(
        instance_id=instance_id or None,
        target_arn=arn,
        target_type=kind,
        status=body.get('status'),
        label=body.get('instanceLabel') or body.get('instanceType'),
        last_updated=_iso(body.get('lastUpdatedAt')),
        started=_iso(first),
        finished=_iso(last),
        duration_s=_duration(first, last),
        events=events,
        failure=failure,
    )


_OVERVIEW = (('Pending', 'pending'), ('InProgress', 'in_progress'), ('Succeeded', 'succeeded'),
             ('Failed', 'failed'), ('Skipped', 'skipped'), ('Ready', 'ready'))


def _counts(info, instances):
    overview = info.get('deploymentOverview')
    if overview:
        counts = dict((name, int(overview.get(key) or 0)) for key, name in _OVERVIEW)
    else:
        counts = dict((name, 0) for key, name in _OVERVIEW)
        for instance in instances:
            for key, name in _OVERVIEW:
                if instance.get('status') == key:
                    counts[name] += 1
    counts['total'] = sum(counts[name] for key, name in _OVERVIEW)
    if not counts['total'] and instances:
        counts['total'] = len(instances)
    return counts


def build_summary(info, targets=None, targets_source=None, targets_note=None, rollback_status=None):
    """The summary of one deployment from its ``deploymentInfo`` and targets (no API calls)."""
    instances = sorted((summarize_target(t) for t in targets or []), key=lambda i: i['instance_id'] or '')
    error = info.get('errorInformation') or {}
    rollback_info = info.get('rollbackInfo') or {}
    rollback = None
    if any(rollback_info.get(k) for k in ('rollbackDeploymentId', 'rollbackTriggeringDeploymentId',
                                          'rollbackMessage')):
        rollback = dict(deployment_id=rollback_info.get('rollbackDeploymentId'),
                        status=rollback_status,
                        triggering_deployment_id=rollback_info.get('rollbackTriggeringDeploymentId'),
                        message=rollback_info.get('rollbackMessage'))
    location = (info.get('revision') or {}).get('s3Location') or {}
    return dict(
        deployment_id=info.get('deploymentId'),
        application=info.get('applicationName'),
        deployment_group=info.get('deploymentGroupName'),
        deployment_config_name=info.get('deploymentConfigName'),
        status=info.get('status'),
        creator=info.get('creator'),
        description=info.get('description'),
        created=_iso(info.get('createTime')),
        started=_iso(info.get('startTime')),
        completed=_iso(info.get('completeTime')),
        duration_s=_duration(info.get('startTime') or info.get('createTime'), info.get('completeTime')),
        revision=dict(bucket=location.get('bucket'), key=location.get('key'), bundle_type=location.get('bundleType'),
                      version=location.get('version'), etag=location.get('eTag')) if location else None,
        error=dict(code=error.get('code'), message=error.get('message')) if error.get('code') or error.get('message')
        else None,
        status_messages=list(info.get('deploymentStatusMessages') or []),
        counts=_counts(info, instances),
        instances=instances,
        instances_source=targets_source,
        instances_note=targets_note,
        rollback=rollback,
    )


def summarize(client, info, params=None, with_targets=True):
    """:func:`build_summary` after reading the targets and the rollback deployment's status.

    Reading them is best effort: a failure ends up in ``instances_note`` (and the rollback
    status stays None) instead of failing the task whose real outcome is ``info['status']``.
    """
    targets, source, note = ([], None, None)
    if with_targets:
        targets, source, note = list_targets(client, info['deploymentId'], params)
    rollback_status = None
    rollback_id = (info.get('rollbackInfo') or {}).get('rollbackDeploymentId')
    if rollback_id:
        try:
            rollback_status = get_deployment(client, rollback_id, params).get('status')
        except CodeDeployError:
            rollback_status = None
    return build_summary(info, targets, source, note, rollback_status)


def _seconds_text(value):
    if value is None:
        return '?'
    if value >= 120:
        return '%dm%02ds' % (int(value) // 60, int(value) % 60)
    return '%.1fs' % value


def _event_text(event):
    status = event['status']
    if status == 'Succeeded':
        return '%s %s' % (event['name'], _seconds_text(event['duration_s']))
    if status == 'Failed':
        return '%s FAILED %s' % (event['name'], _seconds_text(event['duration_s']))
    return '%s %s' % (event['name'], (status or 'unknown').lower())


def failure_text(instance):
    """``ValidateService: ScriptFailed in scripts/validate.sh: <message>`` for a failed instance."""
    failure = instance.get('failure')
    if not failure:
        return None
    parts = [failure['event'] or '?']
    cause = failure['error_code'] or 'failed'
    if failure['script_name']:
        cause += ' in %s' % failure['script_name']
    parts.append(cause)
    if failure['message']:
        parts.append(failure['message'])
    return ': '.join(parts)


def format_summary(summary):
    """The summary as text lines (what the module returns as ``report`` and puts in ``msg``)."""
    lines = []
    head = 'CodeDeploy deployment %s of %s to %s (%s): %s' % (
        summary['deployment_id'], summary['application'], summary['deployment_group'],
        summary['deployment_config_name'] or 'the group\'s deployment config', summary['status'])
    if summary['status'] in FINAL_STATUSES and summary['duration_s'] is not None:
        head += ' after %s' % _seconds_text(summary['duration_s'])
    lines.append(head)
    if summary['revision']:
        rev = summary['revision']
        lines.append('revision: %s' % revision_text(dict(s3Location=dict(
            bucket=rev['bucket'], key=rev['key'], bundleType=rev['bundle_type'], version=rev['version'],
            eTag=rev['etag']))))
    if summary['error']:
        lines.append('error: %s: %s' % (summary['error']['code'] or '?', summary['error']['message'] or ''))
    counts = summary['counts']
    shown = ['%d succeeded' % counts['succeeded'], '%d failed' % counts['failed']]
    for name, label in (('skipped', 'skipped'), ('in_progress', 'in progress'), ('pending', 'pending'),
                        ('ready', 'ready')):
        if counts[name]:
            shown.append('%d %s' % (counts[name], label))
    lines.append('instances: %d (%s)' % (counts['total'], ', '.join(shown)))
    for instance in summary['instances']:
        line = '  %s %s' % (instance['instance_id'] or '?', instance['status'] or 'Unknown')
        if instance['duration_s'] is not None:
            line += ' in %s' % _seconds_text(instance['duration_s'])
        if instance['events']:
            line += ': ' + ', '.join(_event_text(event) for event in instance['events'])
        lines.append(line)
        failure = failure_text(instance)
        if failure:
            lines.append('    failed at %s' % failure)
            tail = (instance['failure'].get('log_tail') or '').rstrip('\n').splitlines()
            if tail:
                shortened = ' (last %d lines)' % LOG_TAIL_LINES if len(tail) > LOG_TAIL_LINES else ''
                lines.append('    log tail%s:' % shortened)
                lines.extend('      %s' % text for text in tail[-LOG_TAIL_LINES:])
    if summary['instances_note']:
        lines.append('  (%s)' % summary['instances_note'])
    rollback = summary['rollback']
    if rollback:
        if rollback['deployment_id']:
            text = 'rolled back by deployment %s' % rollback['deployment_id']
            if rollback['status']:
                text += ' (%s)' % rollback['status']
        elif rollback['triggering_deployment_id']:
            text = 'this deployment rolls back deployment %s' % rollback['triggering_deployment_id']
        else:
            text = 'rollback'
        if rollback['message']:
            text += ': %s' % rollback['message']
        lines.append(text)
    for message in summary['status_messages']:
        lines.append('status message: %s' % message)
    return lines


def failure_message(summary):
    """``msg`` for a deployment that ended Failed or Stopped: the cause first, then the report."""
    first = 'CodeDeploy deployment %s %s' % (summary['deployment_id'], (summary['status'] or '').lower())
    causes = []
    if summary['error']:
        causes.append('%s: %s' % (summary['error']['code'], summary['error']['message']))
    failed = [i for i in summary['instances'] if i.get('failure')]
    if failed:
        causes.append('%s failed at %s' % (failed[0]['instance_id'], failure_text(failed[0])))
        if len(failed) > 1:
            causes.append('%d more instance(s) failed' % (len(failed) - 1))
    rollback = summary['rollback']
    if rollback and rollback['deployment_id']:
        status = ' (%s)' % rollback['status'] if rollback['status'] else ''
        causes.append('rolled back by %s%s' % (rollback['deployment_id'], status))
    if causes:
        first += ': ' + '; '.join(causes)
    return '\n'.join([first, ''] + format_summary(summary))


def timeout_message(summary, timeout, polls):
    """``msg`` for a wait that ended at ``timeout`` with the deployment still running."""
    status = summary['status'] or 'unknown'
    msg = ('CodeDeploy deployment %s did not reach a final status (Succeeded, Failed or Stopped) within '
           'wait_timeout=%s s: last status %s after %d poll(s). The deployment keeps running in CodeDeploy: '
           'raise wait_timeout, or follow it with aws deploy get-deployment --deployment-id %s'
           % (summary['deployment_id'], _number(timeout), status, polls, summary['deployment_id']))
    if status in ('Created', 'Queued'):
        msg += ('. It never started: no agent has picked it up (no instance matches the deployment group, the '
                'agents are not running, or the endpoint does not run deployments, as moto never does)')
    return '\n'.join([msg, ''] + format_summary(summary))


def _number(value):
    return int(value) if float(value).is_integer() else value
