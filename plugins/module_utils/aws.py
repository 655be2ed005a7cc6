# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every goship.deploy AWS module shares.

* :data:`AWS_COMMON_ARGUMENT_SPEC` / :func:`aws_argument_spec`: the connection options
  (documented once in the ``goship.deploy.aws`` doc fragment), with the same names, aliases
  and environment fallbacks as amazon.aws.
* :func:`client`: the one boto3 client factory.  Retries throttling and 5xx answers
  (botocore ``standard`` mode), but gives up on an endpoint that cannot be connected to
  after :data:`CONNECT_ATTEMPTS` attempts of at most :data:`CONNECT_TIMEOUT` seconds each.
* :func:`describe_error`: turns a botocore exception into one sentence that says what
  failed and what to check.  Modules pass it to ``fail_json(msg=...)``; no tracebacks.
* :class:`AWSErrorHandler`: the one wrapper for AWS calls.  A botocore failure of a call
  (``ClientError`` or any ``BotoCoreError``) comes out as an :class:`AWSError`, a
  :class:`~errors.GoshipError` whose message names what was being done and why it failed.
* :class:`ConnectionConfigError`: contradictory connection options (a GoshipError too).
* :data:`HAS_BOTO3` / :func:`require_boto3`: the import guard.

No AnsibleModule is needed here except by :func:`require_boto3` (it takes the module).
"""

from __future__ import annotations

import copy
import traceback
from typing import Any, Callable, Dict, Optional, Tuple, Type

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError

try:
    import boto3
    import botocore
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )
except ImportError:
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()

    # Stand-ins so ``except`` clauses work without botocore; the same shapes as botocore's.
    class BotoCoreError(Exception):  # type: ignore[no-redef]
        """Stand-in for ``botocore.exceptions.BotoCoreError``."""

    class ClientError(Exception):  # type: ignore[no-redef]
        """Stand-in for ``botocore.exceptions.ClientError`` (``response``, ``operation_name``)."""

        def __init__(self, error_response, operation_name):
            super().__init__(error_response.get('Error', {}).get('Message'))
            self.response = error_response
            self.operation_name = operation_name
else:
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None

USER_AGENT = 'goship.deploy/0.1.0'
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 60
CONNECT_ATTEMPTS = 2

# Connection options: the same names, aliases and environment variables as amazon.aws.
AWS_COMMON_ARGUMENT_SPEC = dict(
    region=dict(type='str', aliases=['aws_region'],
                fallback=(env_fallback, ['AWS_REGION', 'AWS_DEFAULT_REGION'])),
    endpoint_url=dict(type='str', aliases=['aws_endpoint_url', 's3_url'],
                      fallback=(env_fallback, ['AWS_URL', 'AWS_ENDPOINT_URL'])),
    profile=dict(type='str', aliases=['aws_profile'],
                 fallback=(env_fallback, ['AWS_PROFILE', 'AWS_DEFAULT_PROFILE'])),
    access_key=dict(type='str', aliases=['aws_access_key_id', 'aws_access_key'], no_log=False,  # an identifier, not a secret (as in amazon.aws)
                    fallback=(env_fallback, ['AWS_ACCESS_KEY_ID', 'AWS_ACCESS_KEY'])),
    secret_key=dict(type='str', aliases=['aws_secret_access_key', 'aws_secret_key'], no_log=True,
                    fallback=(env_fallback, ['AWS_SECRET_ACCESS_KEY', 'AWS_SECRET_KEY'])),
    session_token=dict(type='str', aliases=['aws_session_token'], no_log=True,
                       fallback=(env_fallback, ['AWS_SESSION_TOKEN'])),
    validate_certs=dict(type='bool', default=True),
    aws_ca_bundle=dict(type='path', fallback=(env_fallback, ['AWS_CA_BUNDLE'])),
    retries=dict(type='int', default=5),
)

CONNECTION_KEYS = tuple(AWS_COMMON_ARGUMENT_SPEC)
CREDENTIAL_KEYS = ('profile', 'access_key', 'secret_key', 'session_token')


def aws_argument_spec(**extra):
    """A fresh copy of the connection options, updated with the module's own ``extra``."""
    spec = copy.deepcopy(AWS_COMMON_ARGUMENT_SPEC)
    spec.update(extra)
    return spec


def connection_suboptions():
    """The connection options for a nested dict option (e.g. s3_artifact's ``source``).

    No environment fallbacks and no defaults: an unset value means "inherit from the
    top-level options" (see :func:`inherit_connection`).
    """
    spec = {}
    for name, value in copy.deepcopy(AWS_COMMON_ARGUMENT_SPEC).items():
        value.pop('fallback', None)
        value.pop('default', None)
        spec[name] = value
    return spec


def inherit_connection(own, parent):
    """Connection parameters for a nested connection (``own``) that inherits from ``parent``.

    Region, endpoint, TLS and retry settings are inherited one by one when unset.  The
    credentials (profile, access_key, secret_key, session_token) are inherited only as a
    group, and only when ``own`` sets none of them, so a source profile is never mixed with
    the destination's keys.
    """
    own = own or {}
    result = {}
    for name in CONNECTION_KEYS:
        if name in CREDENTIAL_KEYS:
            continue
        value = own.get(name)
        result[name] = parent.get(name) if value is None else value
    source = own if any(own.get(name) for name in CREDENTIAL_KEYS) else parent
    for name in CREDENTIAL_KEYS:
        result[name] = source.get(name)
    return result


def same_connection(one, other):
    """True when two parameter sets reach the same endpoint with the same credentials."""
    def norm(url):
        return (url or '').rstrip('/').lower()
    if norm(one.get('endpoint_url')) != norm(other.get('endpoint_url')):
        return False
    return all((one.get(name) or None) == (other.get(name) or None) for name in CREDENTIAL_KEYS)


class ConnectionConfigError(GoshipError):
    """The connection options contradict each other (checked before any AWS call)."""


def check_connection_params(params, label=''):
    """Raise :class:`ConnectionConfigError` for contradictory connection options."""
    prefix = label + '.' if label else ''
    if params.get('profile') and (params.get('access_key') or params.get('secret_key') or params.get('session_token')):
        raise ConnectionConfigError(
            '%sprofile (%s) and access keys are both set (as options or through AWS_PROFILE and '
            'AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN in the environment of the '
            'host running the module): use one of them' % (prefix, params['profile']))
    if bool(params.get('access_key')) != bool(params.get('secret_key')):
        given, missing = ('access_key', 'secret_key') if params.get('access_key') else ('secret_key', 'access_key')
        raise ConnectionConfigError(
            '%s%s is set but %s is not: give both (or neither, to use a profile, the environment '
            'or an instance role)' % (prefix, given, missing))
    if params.get('session_token') and not params.get('access_key'):
        raise ConnectionConfigError('%ssession_token needs access_key and secret_key' % prefix)
    retries = params.get('retries')
    if retries is not None and not 0 <= retries <= 20:
        raise ConnectionConfigError('%sretries must be between 0 and 20, got %s' % (prefix, retries))
    endpoint = params.get('endpoint_url')
    if endpoint and not endpoint.lower().startswith(('http://', 'https://')):
        raise ConnectionConfigError(
            '%sendpoint_url must start with http:// or https://, got %r' % (prefix, endpoint))


def require_boto3(module):
    """``fail_json`` when boto3/botocore cannot be imported on the host running the module."""
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib('boto3 and botocore'), exception=BOTO3_IMPORT_ERROR)


def _limit_connect_attempts(attempts, caught_exception=None, **kwargs):
    """``needs-retry`` handler: stop retrying an endpoint that cannot be connected to.

    botocore's standard mode treats connection failures as transient and retries them with
    backoff like throttling; with 5 retries an address that refuses or drops connections
    would take up to a minute to fail.  ``ConnectionError`` covers refused connections,
    connect timeouts, proxy and TLS handshake failures; a connection that breaks in the
    middle of a transfer (``ConnectionClosedError``) keeps the normal retries.  Raising the caught exception here ends the retry
    loop (works on old and new botocore alike); other errors go on to the standard handler.
    """
    if isinstance(caught_exception, botocore.exceptions.ConnectionError) and attempts >= CONNECT_ATTEMPTS:
        raise caught_exception
    return None


def client_config(params, max_pool_connections=None, **overrides):
    """The botocore ``Config`` used by :func:`client`."""
    retries = params.get('retries')
    kwargs = dict(
        retries={'max_attempts': 5 if retries is None else retries, 'mode': 'standard'},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        user_agent_extra=USER_AGENT,
    )
    if params.get('endpoint_url'):
        kwargs['s3'] = {'addressing_style': 'path'}
    if 'response_checksum_validation' in getattr(Config, 'OPTION_DEFAULTS', {}):
        # botocore >= 1.36 validates S3 response checksums on its own by default.  Our modules
        # hash every byte they download against the SHA-256 they expect, which is stronger; and
        # some S3 servers (and moto) report multipart checksums without the "-N" suffix, which
        # makes botocore's own check fail on intact objects.  Validate only when asked for.
        kwargs['response_checksum_validation'] = 'when_required'
    if max_pool_connections:
        kwargs['max_pool_connections'] = max_pool_connections
    kwargs.update(overrides)
    return Config(**kwargs)


def session(params):
    """A boto3 Session for ``params`` (profile, or keys, or the default credential chain)."""
    check_connection_params(params)
    if params.get('profile'):
        return boto3.session.Session(profile_name=params['profile'])
    return boto3.session.Session(
        aws_access_key_id=params.get('access_key') or None,
        aws_secret_access_key=params.get('secret_key') or None,
        aws_session_token=params.get('session_token') or None,
    )


def client(service, params, max_pool_connections=None, **config_overrides):
    """A boto3 client for ``service`` built from the connection options in ``params``.

    ``params`` is a dict with the keys of :data:`AWS_COMMON_ARGUMENT_SPEC` (missing keys
    count as unset).  Raises botocore exceptions (``ProfileNotFound``, ``NoRegionError``,
    ...) and :class:`ConnectionConfigError`; pass them to :func:`describe_error`.
    """
    verify = params.get('aws_ca_bundle') or params.get('validate_certs', True)
    if verify is None:
        verify = True
    conn = session(params).client(
        service,
        region_name=params.get('region') or None,
        endpoint_url=params.get('endpoint_url') or None,
        verify=verify,
        config=client_config(params, max_pool_connections=max_pool_connections, **config_overrides),
    )
    conn.meta.events.register_first('needs-retry', _limit_connect_attempts,
                                    unique_id='goship-limit-connect-attempts')
    return conn


# ---------------------------------------------------------------------------------------------
# Error mapping


def error_code(exc):
    """The AWS error code of a ClientError (``'NoSuchKey'``, ``'404'``, ...), else ``None``."""
    response = getattr(exc, 'response', None)
    if isinstance(response, dict):
        return str(response.get('Error', {}).get('Code') or '') or None
    return None


def error_details(exc):
    """Machine-readable details of an exception, for the failure result (``error`` key)."""
    details = dict(type=type(exc).__name__)
    response = getattr(exc, 'response', None)
    if isinstance(response, dict):
        err = response.get('Error', {})
        meta = response.get('ResponseMetadata', {})
        details.update(
            code=err.get('Code'),
            message=err.get('Message'),
            http_status=meta.get('HTTPStatusCode'),
            request_id=meta.get('RequestId'),
            operation=getattr(exc, 'operation_name', None),
        )
    return details


def where(params):
    """'region R at ENDPOINT' for messages."""
    params = params or {}
    region = params.get('region') or 'the default region'
    endpoint = params.get('endpoint_url') or 'the AWS endpoint'
    return 'region %s at %s' % (region, endpoint)


def who(params):
    """Which credentials were used, for messages (never the secret)."""
    params = params or {}
    if params.get('profile'):
        return 'profile %s' % params['profile']
    if params.get('access_key'):
        return 'access key %s' % params['access_key']
    return 'the default credentials (environment, ~/.aws, instance role)'


def _exception_classes(*names):
    """botocore exception classes by name, skipping ones an older botocore does not have."""
    return tuple(getattr(botocore.exceptions, name) for name in names if hasattr(botocore.exceptions, name))


def _endpoint_of(exc):
    """scheme://host[:port] of the URL a connection error names."""
    url = (getattr(exc, 'kwargs', None) or {}).get('endpoint_url') or ''
    if '://' in url:
        scheme, rest = url.split('://', 1)
        return '%s://%s' % (scheme, rest.split('/', 1)[0])
    return url or 'the AWS endpoint'


def _s3_uri(bucket, key=None, version_id=None):
    if not bucket:
        return 'the object'
    uri = 's3://%s' % bucket
    if key:
        uri += '/%s' % key
    if version_id:
        uri += ' (version %s)' % version_id
    return uri


_ACCESS_DENIED = {'AccessDenied', '403', 'Forbidden', 'AllAccessDisabled', 'AccountProblem',
                  'AuthorizationError', 'UnauthorizedOperation', 'AccessDeniedException'}
_BAD_KEY = {'InvalidAccessKeyId', 'UnrecognizedClientException', 'InvalidClientTokenId', 'AuthFailure'}
_EXPIRED = {'ExpiredToken', 'ExpiredTokenException', 'InvalidToken', 'TokenRefreshRequired', 'RequestExpired'}
_THROTTLED = {'SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded',
              'TooManyRequestsException', 'RequestThrottled', '503', 'ServiceUnavailable'}
_DIGEST = {'BadDigest', 'InvalidDigest', 'XAmzContentSHA256Mismatch', 'XAmzContentChecksumMismatch',
           'InvalidChecksum'}
_WRONG_REGION = {'PermanentRedirect', 'AuthorizationHeaderMalformed', 'IllegalLocationConstraintException',
                 '301', 'Redirect'}
_SSE_HINT_WORDS = ('encrypt', 'sse', 'kms')


def details_suffix(exc):
    """' (Code, HTTP status, request id X)' for a ClientError; '' when there is nothing to add."""
    details = error_details(exc)
    code, status, request_id = error_code(exc), details.get('http_status'), details.get('request_id')
    if not code and not status:
        return ''
    return ' (%s%s%s)' % (code or status, ', HTTP %s' % status if status and str(status) != str(code) else '',
                          ', request id %s' % request_id if request_id else '')


def describe_error(exc, what, bucket=None, key=None, version_id=None, params=None, sse=None, service='S3'):
    """One actionable sentence for a botocore exception.

    ``what`` says what was being done ("upload build/x.deb to s3://b/k"); ``bucket``, ``key``
    and ``version_id`` name the object; ``params`` are the connection options (for region,
    endpoint and credential hints, never printing the secret); ``sse`` is the server-side
    encryption that was requested, if any; ``service`` names the AWS service in the hints.
    Works for any exception (falls back to str()).
    """
    if HAS_BOTO3 and isinstance(exc, ClientError):
        # S3's own codes first: no code is in both groups, so the order between them does not matter.
        return (_describe_s3_client_error(exc, what, bucket, key, version_id, params, sse)
                or _describe_client_error(exc, what, bucket, key, version_id, params, service))
    return _describe_other_error(exc, what, params, service)


def _client_error_parts(exc):
    """(code, message, HTTP status, suffix) of a ClientError."""
    response = exc.response or {}
    return (error_code(exc) or '', response.get('Error', {}).get('Message') or '',
            response.get('ResponseMetadata', {}).get('HTTPStatusCode'), details_suffix(exc))


def _describe_s3_client_error(exc, what, bucket, key, version_id, params, sse):
    """The sentence for S3's own error codes (objects, versions, buckets, SSE), else None.

    S3 wording lives here, apart from the generic wording; s3_artifact, ledger and the
    bundle upload of codedeploy_revision reach it through :func:`describe_error`.
    """
    code, message, _status, suffix = _client_error_parts(exc)
    location = where(params)
    endpoint = (params or {}).get('endpoint_url') or 'the AWS endpoint'
    uri = _s3_uri(bucket, key, version_id)
    if code == 'NoSuchBucket':
        return ('%s failed: bucket %s does not exist in %s: create it or check the bucket name '
                '(goship_artifact_bucket)%s' % (what, bucket or '?', location, suffix))
    if code in ('NoSuchVersion', 'InvalidVersionId') or (
            version_id and (code in ('404', 'NotFound', 'NoSuchKey')
                            or (code == 'InvalidArgument' and 'version' in message.lower()))):
        return ('%s failed: version %s of s3://%s/%s does not exist: list the versions with '
                'state=listed%s' % (what, version_id, bucket, key, suffix))
    if code in ('NoSuchKey', '404', 'NotFound'):
        return ('%s failed: %s does not exist in %s: check the key (<app>/<version>/...) and that '
                'the artifact was uploaded%s' % (what, _s3_uri(bucket, key), location, suffix))
    if code in ('MethodNotAllowed', '405') and version_id:
        return ('%s failed: version %s of s3://%s/%s is a delete marker, not an object%s'
                % (what, version_id, bucket, key, suffix))
    if code in _DIGEST:
        return ('%s failed: the server computed a different checksum than the client sent for %s: the '
                'file changed while it was being uploaded or was corrupted in transit; run the task '
                'again%s' % (what, uri, suffix))
    if code.startswith('KMS.') or code in ('KMSAccessDenied', 'KMSDisabled', 'KMSNotFound',
                                           'InvalidEncryptionAlgorithmError'):
        return ('%s failed: server-side encryption %s was refused: %s: check kms_key_id and that '
                '%s may use the key%s' % (what, sse or '', message or code, who(params), suffix))
    if sse and code in ('InvalidRequest', 'InvalidArgument', 'NotImplemented', '501') and (
            code in ('NotImplemented', '501') or any(w in message.lower() for w in _SSE_HINT_WORDS)):
        return ('%s failed: the S3 server at %s does not accept server-side encryption %s (%s): set '
                'encryption=none for S3 servers without SSE%s' % (what, endpoint, sse, message or code, suffix))
    if code in _ACCESS_DENIED:
        return ('%s failed: access denied to %s for %s: check the IAM and bucket policy '
                '(s3:GetObject, s3:PutObject, s3:ListBucketVersions, ... on this bucket)%s'
                % (what, uri, who(params), suffix))
    if code in _WRONG_REGION:
        response = exc.response or {}
        region = response.get('Error', {}).get('Region') or \
            response.get('ResponseMetadata', {}).get('HTTPHeaders', {}).get('x-amz-bucket-region')
        hint = 'set region to %s' % region if region else 'set region to the bucket\'s region'
        return '%s failed: bucket %s is not in %s: %s%s' % (what, bucket or '?', location, hint, suffix)
    if code == 'InvalidBucketName':
        return '%s failed: %r is not a valid bucket name%s' % (what, bucket, suffix)
    return None


def _describe_client_error(exc, what, bucket, key, version_id, params, service):
    """The sentence for any service's credential, throttling and server errors (and the fallback)."""
    code, message, status, suffix = _client_error_parts(exc)
    endpoint = (params or {}).get('endpoint_url') or 'the AWS endpoint'
    retries = (params or {}).get('retries')
    retries = 5 if retries is None else retries
    if code in _BAD_KEY:
        return ('%s failed: %s is not known to %s: check access_key (AWS_ACCESS_KEY_ID) and that '
                'endpoint_url points at the right %s service%s' % (what, who(params), endpoint, service, suffix))
    if code == 'SignatureDoesNotMatch':
        return ('%s failed: the request signature was rejected by %s: the secret key does not belong '
                'to %s (check secret_key / AWS_SECRET_ACCESS_KEY), or the clock of the host running '
                'the module is off%s' % (what, endpoint, who(params), suffix))
    if code in _EXPIRED:
        return ('%s failed: the credentials of %s have expired: refresh the session token or the '
                'profile\'s login (aws sso login)%s' % (what, who(params), suffix))
    if code in _THROTTLED:
        return ('%s failed: %s kept throttling the requests after %d retries: retry later or raise '
                'retries%s' % (what, endpoint, retries, suffix))
    if (status and int(status) >= 500) or code in ('InternalError', '500', '502', '504'):
        return ('%s failed: %s answered with a server error after %d retries: check the %s service '
                'and retry%s' % (what, endpoint, retries, service, suffix))
    detail = ': %s' % message if message and message != code else ''
    return '%s failed for %s%s%s' % (what, _s3_uri(bucket, key, version_id), detail, suffix)


def _describe_other_error(exc, what, params, service):
    """The sentence for an exception that is not a ClientError (connection, credentials, ...)."""
    endpoint = (params or {}).get('endpoint_url') or 'the AWS endpoint'
    if HAS_BOTO3 and isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return ('%s failed: cannot connect to %s (%d attempts, %d s connect timeout each): check '
                'endpoint_url (AWS_URL) and that the %s service is running and reachable from the host '
                'running the module' % (what, (params or {}).get('endpoint_url') or _endpoint_of(exc),
                                        CONNECT_ATTEMPTS, CONNECT_TIMEOUT, service))
    if HAS_BOTO3 and isinstance(exc, botocore.exceptions.SSLError):
        return ('%s failed: TLS error talking to %s: %s: set aws_ca_bundle to the CA that signed the '
                'endpoint\'s certificate (or validate_certs=false for a lab)' % (what, endpoint, exc))
    if HAS_BOTO3 and isinstance(exc, botocore.exceptions.ReadTimeoutError):
        return ('%s failed: %s did not answer within %d s: check the %s service and retry'
                % (what, endpoint, READ_TIMEOUT, service))
    if HAS_BOTO3 and isinstance(exc, _exception_classes('ConnectionClosedError', 'ResponseStreamingError',
                                                        'IncompleteReadError')):
        return ('%s failed: the connection to %s broke during the transfer (%s): retry the task'
                % (what, endpoint, exc))
    if HAS_BOTO3 and isinstance(exc, NoCredentialsError):
        return ('%s failed: no AWS credentials found: set access_key and secret_key or profile (or '
                'AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE in the environment of the host '
                'running the module), or run it where an instance role is available' % what)
    if HAS_BOTO3 and isinstance(exc, PartialCredentialsError):
        return '%s failed: incomplete AWS credentials: %s' % (what, exc)
    if HAS_BOTO3 and isinstance(exc, NoRegionError):
        return ('%s failed: no region: set region (or AWS_REGION / AWS_DEFAULT_REGION, or a region in '
                'the profile)' % what)
    if HAS_BOTO3 and isinstance(exc, ProfileNotFound):
        return ('%s failed: profile %s is not in ~/.aws/config or ~/.aws/credentials on the host '
                'running the module: check profile (AWS_PROFILE)'
                % (what, getattr(exc, 'kwargs', {}).get('profile') or (params or {}).get('profile')))
    if HAS_BOTO3 and isinstance(exc, botocore.exceptions.ParamValidationError):
        return '%s failed: invalid request parameters: %s' % (what, exc)
    if isinstance(exc, ConnectionConfigError):
        return str(exc)
    if HAS_BOTO3 and isinstance(exc, BotoCoreError):
        return '%s failed: %s' % (what, exc)
    return '%s failed: %s: %s' % (what, type(exc).__name__, exc)


# ---------------------------------------------------------------------------------------------
# The one wrapper for AWS calls


class AWSError(GoshipError):
    """An AWS call failed.

    ``exc`` is the botocore exception behind it (None when there is none), ``operation`` the
    API operation (``CreateDeployment``) when known.  ``details['error']`` holds the error's
    type, code, message, HTTP status and request id for the module result.
    """

    def __init__(self, message: str, exc: Optional[BaseException] = None, operation: Optional[str] = None,
                 details: Optional[Dict[str, Any]] = None):
        super().__init__(message, details)
        self.exc = exc
        self.operation = operation

    @property
    def code(self) -> Optional[str]:
        """The AWS error code of ``exc`` (``'NoSuchKey'``, ``'404'``, ...), else None."""
        return error_code(self.exc)


def api_name(method: Any) -> Optional[str]:
    """The API operation of a bound boto3 client method (``client.create_deployment`` -> CreateDeployment)."""
    name = getattr(method, '__name__', None)
    mapping = getattr(getattr(getattr(method, '__self__', None), 'meta', None), 'method_to_api_mapping', None)
    if isinstance(mapping, dict) and name in mapping:
        return mapping[name]
    return name


class AWSErrorHandler:
    """Runs AWS calls; a botocore failure comes out as :class:`AWSError` saying what failed.

    The amazon.aws ``AWSErrorHandler`` idea: every call goes through :meth:`call` with what
    it does in words ("create CodeDeploy application hello").  Any ``ClientError`` or
    ``BotoCoreError`` (expected or not) becomes ``error_class`` with a sentence from
    :meth:`describe` that starts with those words, so no traceback reaches the user.  A
    service subclasses it to set ``error_class`` and word its own error codes; the generic
    wording stays in :func:`describe_error`.
    """

    error_class: Type[AWSError] = AWSError
    #: The service named in the hints of :func:`describe_error`.
    service = 'AWS'
    #: What counts as a failure of the call.
    caught: Tuple[Type[BaseException], ...] = (ClientError, BotoCoreError)

    def __init__(self, params: Optional[Dict[str, Any]] = None, service: Optional[str] = None):
        self.params = params or {}
        if service:
            self.service = service

    def call(self, what: str, method: Callable[..., Any], *args: Any, none_on: Tuple[str, ...] = (),
             context: Optional[Dict[str, Any]] = None, **kwargs: Any) -> Any:
        """``method(*args, **kwargs)``: its result, or None for an error code in ``none_on``.

        ``what`` says what the call does; ``context`` is passed on to :meth:`describe`.
        Raises ``error_class`` (see :meth:`error`) for any other botocore failure.
        """
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            if not isinstance(exc, self.caught):
                raise       # not a failure of the call (a bug): keep its traceback
            if none_on and error_code(exc) in none_on:
                return None
            raise self.error(exc, what, method, context) from exc

    def error(self, exc: BaseException, what: str, method: Any = None,
              context: Optional[Dict[str, Any]] = None) -> AWSError:
        """The :class:`AWSError` for ``exc``, raised by ``method`` while doing ``what``."""
        operation = getattr(exc, 'operation_name', None) or api_name(method)
        client = getattr(method, '__self__', None)
        endpoint = getattr(getattr(client, 'meta', None), 'endpoint_url', None)
        message = self.describe(exc, what, operation=operation, endpoint=endpoint, **(context or {}))
        return self.error_class_for(exc)(message, exc=exc, operation=operation, details=self.details(exc))

    def error_class_for(self, exc: BaseException) -> Type[AWSError]:
        """The class raised for ``exc`` (a subclass may pick a narrower one)."""
        return self.error_class

    def describe(self, exc: BaseException, what: str, operation: Optional[str] = None,
                 endpoint: Optional[str] = None, **context: Any) -> str:
        """One sentence for ``exc``: the generic wording of :func:`describe_error`."""
        return describe_error(exc, what, params=self.params, service=self.service)

    def details(self, exc: BaseException) -> Dict[str, Any]:
        """The details merged into the module result: ``error`` (see :func:`error_details`)."""
        return {'error': error_details(exc)}
