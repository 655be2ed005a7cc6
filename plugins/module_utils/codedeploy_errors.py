# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The errors of the CodeDeploy path and how a failed CodeDeploy call is worded.

Every error here is a :class:`~errors.GoshipError`, so ``codedeploy_revision`` ends with one
``except GoshipError``.  :class:`CodeDeployErrorHandler` is ``aws.AWSErrorHandler`` for
CodeDeploy: every API call in ``codedeploy`` goes through it, and any botocore failure comes
out as :class:`CodeDeployError` with a sentence from :func:`describe_error` (CodeDeploy's own
error codes here, the generic wording in ``aws.describe_error``).  :func:`is_not_implemented`
recognises endpoints that lack an operation (moto's HTML 500 page, 501,
``UnknownOperationException``).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

from ansible_collections.goship.deploy.plugins.module_utils import aws
from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError

ClientError = aws.ClientError
BotoCoreError = aws.BotoCoreError

#: Built-in deployment configurations for EC2/on-premises (named in the hint for an unknown one).
DEFAULT_CONFIGS = ('CodeDeployDefault.OneAtATime', 'CodeDeployDefault.HalfAtATime',
                   'CodeDeployDefault.AllAtOnce')

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
# The errors: all GoshipError


class CodeDeployError(aws.AWSError):
    """A CodeDeploy failure: an API call that failed (``exc`` set) or a deployment that did not succeed."""


class NotImplementedByEndpoint(CodeDeployError):
    """The endpoint does not implement the operation (moto, a partial emulator, ...)."""


class WaitTimeout(CodeDeployError):
    """The deployment did not reach a final status within the timeout."""


class DeploymentFailed(CodeDeployError):
    """The deployment ended Failed or Stopped."""


class InvalidOption(GoshipError, ValueError):
    """A deployment option cannot be turned into a request.

    Also a ``ValueError``, which these checks always raised (the module's argument checks catch it).
    """


# ---------------------------------------------------------------------------------------------
# Wording


def is_not_implemented(exc: BaseException) -> bool:
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


def describe_error(exc: BaseException, what: str, params: Optional[Dict[str, Any]] = None,
                   operation: Optional[str] = None, endpoint: Optional[str] = None,
                   application: Optional[str] = None, deployment_group: Optional[str] = None,
                   hint: Optional[str] = None) -> str:
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
    if not isinstance(exc, ClientError) or (aws.error_code(exc) or '') in _CREDENTIAL_CODES:
        return aws.describe_error(exc, what, params=params, service='CodeDeploy')
    return _describe_codedeploy_code(exc, what, params, operation, endpoint, application, deployment_group)


def _describe_codedeploy_code(exc: Any, what: str, params: Optional[Dict[str, Any]], operation: str, endpoint: str,
                              application: Optional[str], deployment_group: Optional[str]) -> str:
    """The sentence for a ClientError with one of CodeDeploy's own error codes (or the fallback)."""
    code = aws.error_code(exc) or ''
    message = (exc.response or {}).get('Error', {}).get('Message') or ''
    status = (exc.response or {}).get('ResponseMetadata', {}).get('HTTPStatusCode')
    suffix = aws.details_suffix(exc)
    location = aws.where(params)
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


def error_details(exc: BaseException) -> Dict[str, Any]:
    """``aws.error_details``, without the HTML page an emulator may send as the error message."""
    details = aws.error_details(exc)
    if str(details.get('message') or '').lstrip().startswith('<'):
        details['message'] = '(an HTML error page)'
    return details


class CodeDeployErrorHandler(aws.AWSErrorHandler):
    """``aws.AWSErrorHandler`` for CodeDeploy: :class:`CodeDeployError`, worded by :func:`describe_error`.

    ``NotImplementedError`` (moto in-process) counts as a failed call too, and an operation
    the endpoint lacks raises :class:`NotImplementedByEndpoint`.
    """

    error_class = CodeDeployError
    service = 'CodeDeploy'
    caught = (ClientError, BotoCoreError, NotImplementedError)

    def error_class_for(self, exc: BaseException) -> Type[aws.AWSError]:
        return NotImplementedByEndpoint if is_not_implemented(exc) else CodeDeployError

    def describe(self, exc: BaseException, what: str, operation: Optional[str] = None,
                 endpoint: Optional[str] = None, **context: Any) -> str:
        return describe_error(exc, what, self.params, operation=operation, endpoint=endpoint, **context)

    def details(self, exc: BaseException) -> Dict[str, Any]:
        return {'error': error_details(exc)}
