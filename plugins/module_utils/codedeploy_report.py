# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report of one CodeDeploy rollout: a summary dict, its text, and the failure messages.

:func:`build_summary` (no API calls) / :func:`summarize` (reads the targets and the rollback
first): per instance its status, every lifecycle event's status and duration, for failures
the script, error code, message and log tail; overall counts; rollback info.  Per-instance
details are best effort: when they cannot be read the summary says why and still carries
the deployment's own status and counts.  :func:`format_summary` renders it as text lines;
:func:`failure_message` / :func:`timeout_message` are the module's ``msg`` when a deployment
fails or the wait times out.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.goship.deploy.plugins.module_utils.codedeploy import (
    FINAL_STATUSES,
    get_deployment,
    list_targets,
    revision_text,
)
from ansible_collections.goship.deploy.plugins.module_utils.codedeploy_errors import CodeDeployError

__all__ = ['LOG_TAIL_LINES', 'summarize_event', 'summarize_target', 'build_summary', 'summarize', 'failure_text',
           'format_summary', 'failure_message', 'timeout_message']

#: Lines of a script's log tail shown per failed instance in the text report.
LOG_TAIL_LINES = 20


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, 'isoformat') else value


def _duration(start: Any, end: Any) -> Optional[float]:
    if hasattr(start, 'timestamp') and hasattr(end, 'timestamp'):
        return round((end - start).total_seconds(), 3)
    if isinstance(start, (int, float)) and isinstance(end, (int, float)):
        return round(end - start, 3)
    return None


def summarize_event(event: Dict[str, Any]) -> Dict[str, Any]:
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


def _target_body(target: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """(kind, body) of a DeploymentTarget, or ('InstanceSummary', target) for the older shape."""
    for kind, field in (('InstanceTarget', 'instanceTarget'), ('LambdaTarget', 'lambdaTarget'),
                        ('ECSTarget', 'ecsTarget'), ('CloudFormationTarget', 'cloudFormationTarget')):
        if target.get(field):
            return target.get('deploymentTargetType') or kind, target[field]
    return 'InstanceSummary', target


def summarize_target(target: Dict[str, Any]) -> Dict[str, Any]:
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


def _counts(info: Dict[str, Any], instances: List[Dict[str, Any]]) -> Dict[str, int]:
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


def build_summary(info: Dict[str, Any], targets: Optional[List[Dict[str, Any]]] = None,
                  targets_source: Optional[str] = None, targets_note: Optional[str] = None,
                  rollback_status: Optional[str] = None) -> Dict[str, Any]:
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


def summarize(client: Any, info: Dict[str, Any], params: Optional[Dict[str, Any]] = None,
              with_targets: bool = True) -> Dict[str, Any]:
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


def _seconds_text(value: Optional[float]) -> str:
    if value is None:
        return '?'
    if value >= 120:
        return '%dm%02ds' % (int(value) // 60, int(value) % 60)
    return '%.1fs' % value


def _event_text(event: Dict[str, Any]) -> str:
    status = event['status']
    if status == 'Succeeded':
        return '%s %s' % (event['name'], _seconds_text(event['duration_s']))
    if status == 'Failed':
        return '%s FAILED %s' % (event['name'], _seconds_text(event['duration_s']))
    return '%s %s' % (event['name'], (status or 'unknown').lower())


def failure_text(instance: Dict[str, Any]) -> Optional[str]:
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


def format_summary(summary: Dict[str, Any]) -> List[str]:
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


def failure_message(summary: Dict[str, Any]) -> str:
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


def timeout_message(summary: Dict[str, Any], timeout: float, polls: int) -> str:
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


def _number(value: float) -> Any:
    return int(value) if float(value).is_integer() else value
