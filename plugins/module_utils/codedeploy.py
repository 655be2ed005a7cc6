# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CodeDeploy API calls for ``goship.deploy.codedeploy_revision``, and their errors.

No Ansible here: every function takes a boto3 ``codedeploy`` client (or plain options) and
returns plain dicts.  Every API call goes through ``codedeploy_errors.CodeDeployErrorHandler``
(``aws.AWSErrorHandler`` for CodeDeploy), so any failure comes out as a
:class:`~codedeploy_errors.CodeDeployError` whose message is a sentence a person can act on.
The bundle lives in ``codedeploy_revision_bundle``, the report of a rollout in
``codedeploy_report``.

* :func:`s3_revision`, :func:`create_deployment_args`, :func:`normalize_auto_rollback`,
  :func:`tag_filters`, :func:`tag_set`: the request shapes.
* :func:`ensure_application`, :func:`ensure_deployment_group`, :func:`register_revision`,
  :func:`find_current_deployment`, :func:`create_deployment`: a read and/or a write each.
* :func:`wait_for_deployment`: polls GetDeployment until Succeeded, Failed or Stopped or
  until ``timeout`` seconds have passed (bounded in time *and* in number of polls).
* :func:`list_targets`: the deployment's instances (ListDeploymentTargets, or the older
  ListDeploymentInstances where the newer pair is missing), best effort.

Endpoints that lack an operation: moto (the lab's CodeDeploy API) answers operations it
does not implement with an HTTP 500 HTML page; real services answer
``UnknownOperationException`` or 501.  :func:`client_for` gives up on such answers at once
instead of retrying them as server errors, and ``codedeploy_errors`` recognises them, so
the message says "this endpoint does not implement X".  moto also never moves a
deployment past ``Created``: waiting then ends at ``timeout`` with the last status seen.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.goship.deploy.plugins.module_utils import aws
from ansible_collections.goship.deploy.plugins.module_utils.codedeploy_errors import (
    DEFAULT_CONFIGS,
    CodeDeployError,
    CodeDeployErrorHandler,
    InvalidOption,
    NotImplementedByEndpoint,
)

__all__ = [
    'FINAL_STATUSES', 'DEFAULT_CONFIGS', 'AUTO_ROLLBACK_EVENTS', 'FILE_EXISTS_BEHAVIORS', 'TAG_FILTER_TYPES',
    'BUNDLE_TYPES', 'CodeDeployError', 'NotImplementedByEndpoint', 'InvalidOption', 'client_for',
    's3_revision', 'revision_text', 'same_revision', 'normalize_auto_rollback', 'create_deployment_args',
    'tag_filters', 'tag_set', 'ensure_application', 'get_deployment_group', 'ensure_deployment_group',
    'register_revision', 'get_deployment', 'find_current_deployment', 'create_deployment',
    'wait_for_deployment', 'list_targets',
]

#: Statuses after which a deployment never changes again.
FINAL_STATUSES = ('Succeeded', 'Failed', 'Stopped')
AUTO_ROLLBACK_EVENTS = ('DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_ALARM', 'DEPLOYMENT_STOP_ON_REQUEST')
FILE_EXISTS_BEHAVIORS = ('DISALLOW', 'OVERWRITE', 'RETAIN')
TAG_FILTER_TYPES = ('KEY_AND_VALUE', 'KEY_ONLY', 'VALUE_ONLY')
BUNDLE_TYPES = {'zip': 'zip', 'tgz': 'tgz', 'tar': 'tar'}
#: Most ids BatchGetDeploymentTargets / BatchGetDeploymentInstances take per call.
BATCH_SIZE = 25
#: Most pages read from a List* call (25+ targets each): bounds every listing loop.
MAX_PAGES = 200


# ---------------------------------------------------------------------------------------------
# The client


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
        raise aws.ClientError(parsed, operation.name)
    return None


def client_for(params: Dict[str, Any], service: str = 'codedeploy') -> Any:
    """``aws.client(service, params)`` that does not retry "not implemented" answers.

    Raises :class:`CodeDeployError` (no profile, no region, ...) or ``aws.ConnectionConfigError``.
    """
    conn = CodeDeployErrorHandler(params).call('create the CodeDeploy client', aws.client, service, params)
    conn.meta.events.register_first('needs-retry', _stop_retrying_unimplemented,
                                    unique_id='goship-stop-retrying-unimplemented')
    return conn


# ---------------------------------------------------------------------------------------------
# Request shapes


def s3_revision(bucket: str, key: str, bundle_type: str, version: Optional[str] = None,
                etag: Optional[str] = None) -> Dict[str, Any]:
    """A ``RevisionLocation`` of type S3.  ``version`` and ``eTag`` are left out when unknown."""
    location = dict(bucket=bucket, key=key, bundleType=BUNDLE_TYPES.get(bundle_type, bundle_type))
    if version and version != 'null':
        location['version'] = version
    if etag:
        location['eTag'] = etag.strip('"')
    return dict(revisionType='S3', s3Location=location)


def revision_text(revision: Optional[Dict[str, Any]]) -> str:
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


def same_revision(one: Optional[Dict[str, Any]], other: Optional[Dict[str, Any]]) -> bool:
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


def normalize_auto_rollback(value: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The ``auto_rollback`` option as an ``AutoRollbackConfiguration`` (or None when unset).

    ``{enabled: true}`` without events means ``[DEPLOYMENT_FAILURE]``.  Raises :class:`InvalidOption`.
    """
    if value is None:
        return None
    enabled = value.get('enabled')
    enabled = True if enabled is None else bool(enabled)
    events = list(value.get('events') or [])
    unknown = [event for event in events if event not in AUTO_ROLLBACK_EVENTS]
    if unknown:
        raise InvalidOption('auto_rollback.events: unknown event %s (known: %s)'
                            % (', '.join(map(str, unknown)), ', '.join(AUTO_ROLLBACK_EVENTS)))
    if enabled and not events:
        events = ['DEPLOYMENT_FAILURE']
    config: Dict[str, Any] = dict(enabled=enabled)
    if events:
        config['events'] = events
    return config


def create_deployment_args(application: str, deployment_group: str, revision: Dict[str, Any],
                           deployment_config_name: Optional[str] = None, description: Optional[str] = None,
                           auto_rollback: Optional[Dict[str, Any]] = None, file_exists_behavior: Optional[str] = None,
                           ignore_application_stop_failures: Optional[bool] = None) -> Dict[str, Any]:
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
            raise InvalidOption('file_exists_behavior must be one of %s' % ', '.join(FILE_EXISTS_BEHAVIORS))
        args['fileExistsBehavior'] = file_exists_behavior
    if ignore_application_stop_failures is not None:
        args['ignoreApplicationStopFailures'] = bool(ignore_application_stop_failures)
    return args


def tag_filters(filters: Optional[List[Any]], label: str = 'ec2_tag_filters') -> List[Dict[str, str]]:
    """``[{key, value, type}]`` -> CodeDeploy ``EC2TagFilter`` list.  Raises :class:`InvalidOption`."""
    result = []
    for index, item in enumerate(filters or []):
        if not isinstance(item, dict):
            raise InvalidOption('%s[%d] must be a mapping with key, value and type' % (label, index))
        key, value = item.get('key', item.get('Key')), item.get('value', item.get('Value'))
        kind = item.get('type', item.get('Type')) or ('KEY_AND_VALUE' if key and value is not None
                                                      else 'KEY_ONLY' if key else 'VALUE_ONLY')
        if kind not in TAG_FILTER_TYPES:
            raise InvalidOption('%s[%d].type must be one of %s' % (label, index, ', '.join(TAG_FILTER_TYPES)))
        if kind in ('KEY_AND_VALUE', 'KEY_ONLY') and not key:
            raise InvalidOption('%s[%d].key is required with type %s' % (label, index, kind))
        if kind in ('KEY_AND_VALUE', 'VALUE_ONLY') and value in (None, ''):
            raise InvalidOption('%s[%d].value is required with type %s' % (label, index, kind))
        entry = dict(Type=kind)
        if kind != 'VALUE_ONLY':
            entry['Key'] = str(key)
        if kind != 'KEY_ONLY':
            entry['Value'] = str(value)
        result.append(entry)
    return result


def tag_set(groups: Optional[List[Any]]) -> Optional[Dict[str, Any]]:
    """``[[filter, ...], ...]`` -> ``EC2TagSet`` (instances must match one filter of EVERY group)."""
    if not groups:
        return None
    if len(groups) > 3:
        raise InvalidOption('ec2_tag_set takes at most 3 groups (a CodeDeploy limit)')
    result = []
    for index, group in enumerate(groups):
        if not isinstance(group, list) or not group:
            raise InvalidOption('ec2_tag_set[%d] must be a non-empty list of tag filters' % index)
        result.append(tag_filters(group, 'ec2_tag_set[%d]' % index))
    return dict(ec2TagSetList=result)


# ---------------------------------------------------------------------------------------------
# Applications, groups, revisions, deployments


def ensure_application(client: Any, application: str, params: Optional[Dict[str, Any]] = None,
                       check_mode: bool = False) -> bool:
    """Create the application (compute platform Server) when it does not exist; True if created."""
    api = CodeDeployErrorHandler(params)
    context = dict(application=application)
    found = api.call('look up CodeDeploy application %s' % application, client.get_application,
                     none_on=('ApplicationDoesNotExistException',), context=context, applicationName=application)
    if found is not None:
        return False
    if check_mode:
        return True
    created = api.call('create CodeDeploy application %s' % application, client.create_application,
                       none_on=('ApplicationAlreadyExistsException',), context=context,
                       applicationName=application, computePlatform='Server')
    return created is not None   # None: created meanwhile by someone else


def get_deployment_group(client: Any, application: str, deployment_group: str,
                         params: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
    """``deploymentGroupInfo``, or None when the group (or its application) does not exist."""
    response = CodeDeployErrorHandler(params).call(
        'look up deployment group %s of %s' % (deployment_group, application), client.get_deployment_group,
        none_on=('DeploymentGroupDoesNotExistException',),
        context=dict(application=application, deployment_group=deployment_group),
        applicationName=application, deploymentGroupName=deployment_group)
    if response is None:
        return None
    return response.get('deploymentGroupInfo') or dict(deploymentGroupName=deployment_group)


def _group_differences(current: Dict[str, Any], deployment_group: str, spec: Dict[str, Any],
                       filters: List[Dict[str, str]], tagset: Optional[Dict[str, Any]]) -> List[str]:
    """Warnings for an existing group that differs from ``spec`` (it is never changed)."""
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
    return warnings


def ensure_deployment_group(client: Any, application: str, deployment_group: str, spec: Dict[str, Any],
                            params: Optional[Dict[str, Any]] = None, check_mode: bool = False
                            ) -> Tuple[bool, List[str], Optional[Dict[str, Any]]]:
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
        return False, _group_differences(current, deployment_group, spec, filters, tagset), current
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
    created = CodeDeployErrorHandler(params).call(
        'create deployment group %s of %s' % (deployment_group, application), client.create_deployment_group,
        none_on=('DeploymentGroupAlreadyExistsException',),
        context=dict(application=application, deployment_group=deployment_group), **args)
    return created is not None, [], None


REGISTER_HINT = ('set register: false (create_deployment does not need a registered revision; registering only '
                 'lists it under the application in the console)')


def register_revision(client: Any, application: str, revision: Dict[str, Any], description: Optional[str] = None,
                      params: Optional[Dict[str, Any]] = None) -> bool:
    """Register ``revision`` with the application unless it already is; True when registered now.

    The lookup (GetApplicationRevision) is only an optimisation: when the endpoint does not
    implement it, the registration is attempted anyway, so the error (if any) names the
    operation that matters, RegisterApplicationRevision.
    """
    api = CodeDeployErrorHandler(params)
    what = 'register the revision %s with application %s' % (revision_text(revision), application)
    try:
        found = api.call(what, client.get_application_revision, none_on=('RevisionDoesNotExistException',),
                         context=dict(application=application), applicationName=application, revision=revision)
        if found is not None:
            return False
    except NotImplementedByEndpoint:
        pass
    kwargs = dict(applicationName=application, revision=revision)
    if description:
        kwargs['description'] = description
    api.call(what, client.register_application_revision, context=dict(application=application, hint=REGISTER_HINT),
             **kwargs)
    return True


def get_deployment(client: Any, deployment_id: str, params: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """``deploymentInfo`` of one deployment."""
    response = CodeDeployErrorHandler(params).call('read deployment %s' % deployment_id, client.get_deployment,
                                                   deploymentId=deployment_id)
    return response.get('deploymentInfo') or {}


def find_current_deployment(client: Any, application: str, deployment_group: str, revision: Dict[str, Any],
                            params: Optional[Dict[str, Any]] = None,
                            group_info: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
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


def create_deployment(client: Any, args: Dict[str, Any], params: Optional[Dict[str, Any]] = None) -> str:
    """``create_deployment(**args)`` -> the new deployment id."""
    what = 'create a deployment of %s to %s/%s' % (
        revision_text(args.get('revision')), args.get('applicationName'), args.get('deploymentGroupName'))
    response = CodeDeployErrorHandler(params).call(
        what, client.create_deployment,
        context=dict(application=args.get('applicationName'), deployment_group=args.get('deploymentGroupName')),
        **args)
    return response['deploymentId']


def wait_for_deployment(client: Any, deployment_id: str, timeout: float, interval: float,
                        params: Optional[Dict[str, Any]] = None, clock: Callable[[], float] = time.monotonic,
                        sleep: Callable[[float], Any] = time.sleep) -> Tuple[Dict[str, Any], bool, int]:
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
    info: Dict[str, Any] = {}
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
# The deployment's targets (for the report)


def _chunks(items: List[Any], size: int) -> List[List[Any]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def _list_all(api: CodeDeployErrorHandler, method: Callable[..., Any], result_key: str, what: str,
              **kwargs: Any) -> List[Any]:
    ids: List[Any] = []
    token = None
    for _page in range(MAX_PAGES):
        if token:
            kwargs['nextToken'] = token
        response = api.call(what, method, **kwargs)
        ids.extend(response.get(result_key) or [])
        token = response.get('nextToken')
        if not token:
            break
    return ids


def _list_and_read(client: Any, deployment_id: str, params: Optional[Dict[str, Any]], noun: str, list_op: str,
                   list_key: str, batch_op: str, ids_param: str, result_key: str) -> List[Dict[str, Any]]:
    """List every id of the deployment's ``noun`` with ``list_op``, then read them in batches."""
    api = CodeDeployErrorHandler(params)
    ids = _list_all(api, getattr(client, list_op), list_key, 'list the %s of deployment %s' % (noun, deployment_id),
                    deploymentId=deployment_id)
    items: List[Dict[str, Any]] = []
    for chunk in _chunks(ids, BATCH_SIZE):
        response = api.call('read the %s of deployment %s' % (noun, deployment_id), getattr(client, batch_op),
                            deploymentId=deployment_id, **{ids_param: chunk})
        items.extend(response.get(result_key) or [])
    return items


def _targets_note(exc: CodeDeployError) -> str:
    """Why no per-instance details can be shown, from the error that prevented reading them."""
    if exc.code == 'DeploymentNotStartedException':
        return 'the deployment has not started on any instance yet'
    return exc.message


def list_targets(client: Any, deployment_id: str, params: Optional[Dict[str, Any]] = None
                 ) -> Tuple[List[Dict[str, Any]], Optional[str], Optional[str]]:
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
        return [], None, _targets_note(exc)
    try:
        instances = _list_and_read(client, deployment_id, params, 'instances', 'list_deployment_instances',
                                   'instancesList', 'batch_get_deployment_instances', 'instanceIds',
                                   'instancesSummary')
        return instances, 'instances', None
    except NotImplementedByEndpoint:
        return [], None, ('no per-instance details: the endpoint %s implements neither ListDeploymentTargets '
                          'nor ListDeploymentInstances' % client.meta.endpoint_url)
    except CodeDeployError as exc:
        return [], None, _targets_note(exc)
