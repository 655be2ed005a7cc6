#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: codedeploy_revision
short_description: Bundle, validate, push and deploy an AWS CodeDeploy revision, and report the rollout
version_added: "0.1.0"
author: goship.deploy maintainers (@goship)
description:
  - Builds a CodeDeploy bundle (zip, tgz or tar with C(appspec.yml) at its root), validates
    it, uploads it to S3 with a verified SHA-256, and deploys it to an EC2/on-premises
    deployment group. It can wait for the deployment and return one summary of the whole
    rollout.
  - "The bundle comes from one of four sources in O(bundle). It can be an appspec file
    (O(bundle.appspec)) or appspec text (O(bundle.appspec_content)). It can be structured
    input (O(bundle.files), O(bundle.permissions), O(bundle.hooks)). Or it can be the
    standard Go service bundle built from a few variables (O(bundle.go_service)): its
    C(.deb) or binary plus hook scripts that stop, migrate, install, start and validate the
    service. O(bundle.content) adds local files and directories (hook scripts, configuration)
    to any of these. The same inputs always give the same bytes."
  - "Validation always runs before anything is uploaded. The appspec inside the bundle is
    checked against the bundle's own files, with the rules of
    C(plugins/module_utils/appspec.py): version C(0.0), os, lifecycle event names valid for
    EC2/on-premises (never C(DownloadBundle) or C(Install)), every C(files) source and hook
    script present, scripts with a shebang and LF line endings, timeouts from 1 to 3600 s
    and at most 3600 s per lifecycle event, C(runas) a plain user name, and
    C(file_exists_behavior). Every problem is reported at once, with its path in the
    appspec (for example C(hooks.AfterInstall[0].timeout)). Warnings are shown and returned."
  - "O(state=validated): bundle and validate only, with no AWS call. O(bundle_path) is
    written when it is set."
  - "O(state=present): validate, then upload the bundle through the C(s3_artifact) logic
    (SHA-256 in the object metadata, checksum checked by the server, version id returned).
    With O(register=true) the revision is also registered with the application."
  - "O(state=deployed): O(state=present), then create a deployment of that exact object
    version (bucket, key, bundle type, S3 version id and ETag) to O(deployment_group),
    then wait for it (O(wait)). A deployment that ends C(Failed) or C(Stopped) fails the
    task. Its C(msg) names the cause (error code, the first failed instance, lifecycle
    event, script, error code and message) followed by the whole report."
  - The application and the deployment group can be created when missing
    (O(ensure_application), O(ensure_deployment_group)). There are no CodeDeploy modules in
    amazon.aws or community.aws. Existing ones are never changed.
options:
  state:
    description:
      - What to do, see the description.
    type: str
    choices: [validated, present, deployed]
    default: present
  bundle:
    description:
      - What goes into the bundle. Set exactly one appspec source, O(bundle.appspec),
        O(bundle.appspec_content), the structured O(bundle.files) / O(bundle.permissions)
        / O(bundle.hooks) / O(bundle.file_exists_behavior), or O(bundle.go_service).
    type: dict
    required: true
    suboptions:
      format:
        description:
          - Archive format, also the revision's C(bundleType).
        type: str
        choices: [zip, tgz, tar]
        default: zip
      appspec:
        description:
          - Path of an C(appspec.yml) on the host running the module. It is stored as
            C(appspec.yml) at the root of the bundle.
        type: path
      appspec_content:
        description:
          - The text of C(appspec.yml).
        type: str
      files:
        description:
          - Structured input, the appspec C(files) section, C([{source, destination}]).
            C(source) is a path inside the bundle, C(destination) an absolute path on the
            instance.
        type: list
        elements: dict
      permissions:
        description:
          - Structured input, the appspec C(permissions) section, C([{object, pattern,
            except, owner, group, mode, type, acls, context}]). An integer C(mode) is read
            as a numeric mode, as in M(ansible.builtin.file).
        type: list
        elements: dict
      hooks:
        description:
          - "Structured input, the appspec C(hooks), C({LifecycleEvent: [{location, timeout,
            runas}]}). An item can also be just the location. The scripts must be in the
            bundle, see O(bundle.content)."
        type: dict
      file_exists_behavior:
        description:
          - Structured input, the appspec's own C(file_exists_behavior). It overrides
            O(file_exists_behavior) of the deployment on the agent.
        type: str
        choices: [DISALLOW, OVERWRITE, RETAIN]
      os:
        description:
          - Structured input, the appspec C(os).
        type: str
        choices: [linux, windows]
        default: linux
      go_service:
        description:
          - The standard bundle of a Go service (C(codedeploy_go_service.go_service_layout)).
          - "Hooks: ApplicationStop C(scripts/stop.sh), which always exits 0 because
            CodeDeploy runs it from the previously deployed revision. AfterInstall runs
            C(scripts/migrate.sh) when O(bundle.go_service.migrations_dir) is set (once per
            deployment, under a PostgreSQL advisory lock), then C(scripts/install.sh) for a
            C(.deb). ApplicationStart runs C(scripts/start.sh). ValidateService runs
            C(scripts/validate.sh), which polls the health URL and the status URL's version."
        type: dict
        suboptions:
          service:
            description: Service name (systemd unit and package name).
            type: str
            required: true
          version:
            description: The version the status URL must report after the deployment. Quote it in YAML.
            type: str
            required: true
          artifact:
            description:
              - The service's C(.deb) (installed with apt in AfterInstall) or its binary
                (copied to O(bundle.go_service.binary_dir)), on the host running the module.
            type: path
            required: true
          health_url:
            description: URL on the instance that must answer HTTP 200, for example V(http://127.0.0.1:8080/healthz).
            type: str
            required: true
          status_url:
            description: URL that reports the running version. Defaults to C(/status) on the host of O(bundle.go_service.health_url).
            type: str
          version_key:
            description: JSON key of the version in the status answer. Use V('') for a plain-text body.
            type: str
          migrations_dir:
            description: Local directory whose C(*.sql) files are shipped and applied once per deployment.
            type: path
          pg_env_file:
            description: PostgreSQL connection settings on the instance (mode 0600). Defaults to C(/etc/<service>/migrate.env).
            type: str
          migrations_table:
            description: Bookkeeping table of applied migrations. Defaults to C(goship_schema_migrations).
            type: str
          binary_dir:
            description: Where a binary artifact is installed. Defaults to C(/usr/local/bin).
            type: str
          unit_file:
            description: A systemd unit shipped with a binary artifact.
            type: path
          validate_timeout:
            description: Seconds C(validate.sh) waits for health and version. Defaults to 120.
            type: int
          validate_interval:
            description: Seconds between its attempts. Defaults to 2.
            type: int
          timeouts:
            description: Appspec timeouts per script, C({stop, migrate, install, start, validate}) in seconds.
            type: dict
      content:
        description:
          - Local files or directories to put into the bundle, in addition to what the
            appspec source brings. A directory is added with everything under it.
        type: list
        elements: dict
        suboptions:
          src:
            description: File or directory on the host running the module.
            type: path
            required: true
          path:
            description: Path in the bundle. Defaults to the last part of O(bundle.content[].src).
            type: str
          mode:
            description: Mode in the bundle, for example V('0755'). Defaults to 0755 for executable files, else 0644.
            type: raw
      mtime:
        description:
          - Timestamp of every entry. Defaults to E(SOURCE_DATE_EPOCH), else 0.
        type: int
  bundle_path:
    description:
      - Where to keep the bundle on the host running the module. It is rewritten only when
        its bytes change, and missing directories are created. Without it the bundle goes
        to a temporary file.
      - Only a bundle that passed validation is written.
    type: path
  bucket:
    description:
      - S3 bucket for the bundle. Required with O(state=present) and O(state=deployed).
      - Use a versioned bucket, so that the deployment names one exact object version.
    type: str
  key:
    description:
      - Object key of the bundle, by convention C(<app>/<version>/codedeploy/<app>_<version>.zip).
    type: str
  s3_endpoint_url:
    description:
      - Endpoint of the S3 service that receives the bundle, when it is not O(endpoint_url).
        O(endpoint_url) is then used for CodeDeploy only.
      - In the lab, S3 (SeaweedFS) and the CodeDeploy API (moto) are different services.
        Set O(endpoint_url) to C(goship_aws_api_endpoint_url) and this to
        C(goship_aws.endpoint_url).
      - CodeDeploy agents download the bundle themselves, from the S3 of the instances' region.
    type: str
  encryption:
    description:
      - Server-side encryption of the uploaded bundle, as in M(goship.deploy.s3_artifact).
        Use V(none) for S3 servers without server-side encryption.
    type: str
    choices: [AES256, 'aws:kms', none]
    default: AES256
  kms_key_id:
    description:
      - KMS key for O(encryption=aws:kms).
    type: str
  application:
    description:
      - CodeDeploy application name. Required with O(state=deployed), O(register) and O(ensure_application).
    type: str
  deployment_group:
    description:
      - Deployment group to deploy to. Required with O(state=deployed).
    type: str
  register:
    description:
      - Register the uploaded revision with the application
        (C(RegisterApplicationRevision)) unless it already is. Deployments do not need it.
      - moto does not implement this operation. The task then fails and says to set
        O(register=false).
    type: bool
    default: false
  ensure_application:
    description:
      - Create O(application) (compute platform C(Server)) when it does not exist.
    type: bool
    default: false
  ensure_deployment_group:
    description:
      - Create O(deployment_group) with these settings when it does not exist. An existing
        group is left as it is, and differing settings are reported as warnings.
    type: dict
    suboptions:
      service_role_arn:
        description: IAM role that CodeDeploy assumes (trusts C(codedeploy.amazonaws.com), policy C(AWSCodeDeployRole)).
        type: str
        required: true
      ec2_tag_filters:
        description:
          - EC2 instances to deploy to. An instance is included when it matches ANY of these filters.
        type: list
        elements: dict
        suboptions:
          key:
            description: Tag key.
            type: str
          value:
            description: Tag value.
            type: str
          type:
            description: Filter type. Defaults to V(KEY_AND_VALUE) when both are set.
            type: str
            choices: [KEY_AND_VALUE, KEY_ONLY, VALUE_ONLY]
      ec2_tag_set:
        description:
          - "Up to 3 groups of tag filters (a list of lists of C({key, value, type})). An
            instance is included when it matches a filter of EVERY group, for example
            C([[{key: app, value: hello-svc}], [{key: env, value: production}]])."
        type: list
        elements: list
      deployment_config_name:
        description: The group's default deployment configuration. Defaults to O(deployment_config_name), else C(CodeDeployDefault.OneAtATime).
        type: str
  deployment_config_name:
    description:
      - Deployment configuration, V(CodeDeployDefault.OneAtATime),
        V(CodeDeployDefault.HalfAtATime), V(CodeDeployDefault.AllAtOnce) or a custom one.
        Defaults to the group's.
    type: str
  auto_rollback:
    description:
      - Automatic rollback for this deployment, overriding the group's.
    type: dict
    suboptions:
      enabled:
        description: Roll back automatically.
        type: bool
        default: true
      events:
        description: When to roll back. Defaults to V(DEPLOYMENT_FAILURE) when enabled.
        type: list
        elements: str
        choices: [DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM, DEPLOYMENT_STOP_ON_REQUEST]
  file_exists_behavior:
    description:
      - What the agent does with files that exist at a destination and were not installed
        by the group's previous revision. An appspec C(file_exists_behavior) takes precedence.
    type: str
    choices: [DISALLOW, OVERWRITE, RETAIN]
  ignore_application_stop_failures:
    description:
      - Carry on when the previous revision's ApplicationStop script fails. A broken old
        script otherwise blocks every later deployment to the group.
    type: bool
  description:
    description:
      - Description of the deployment and of the registered revision.
    type: str
  force:
    description:
      - Create a deployment even when the group's last deployment is of this same revision
        and did not fail.
    type: bool
    default: false
  wait:
    description:
      - Wait until the deployment is C(Succeeded), C(Failed) or C(Stopped), then return the
        summary of the rollout.
      - With V(false) the task returns once the deployment is created, with its current status.
    type: bool
    default: true
  wait_timeout:
    description:
      - Most seconds to wait. When the deployment is still running after that, the task
        fails with the last status seen, and the deployment carries on in CodeDeploy.
      - moto never moves a deployment past C(Created), so there the wait always ends here.
    type: int
    default: 1800
  poll_interval:
    description:
      - Seconds between two status requests while waiting.
    type: int
    default: 10
extends_documentation_fragment:
  - goship.deploy.aws
attributes:
  check_mode:
    support: partial
    description: Can run in check mode, but only bundles and validates.
    details:
      - Builds and validates the bundle and reports whether O(bundle_path) would change.
        No AWS call is made and nothing is uploaded, registered, created or deployed.
      - The task reports a change for O(state=present) and O(state=deployed), since what
        would be uploaded or deployed is not looked up.
  diff_mode:
    support: none
    description: Reports no differences.
  platform:
    support: full
    platforms: posix
    description:
      - Runs on the host the task targets, usually the controller
        (C(delegate_to=localhost)), which needs boto3 and botocore. Local paths are on
        that host.
  action_group:
    support: full
    membership: [goship.deploy.aws]
    description:
      - Use C(group/goship.deploy.aws) in C(module_defaults) to set the connection options
        of all goship.deploy AWS modules at once.
notes:
  - O(endpoint_url) and the other connection options apply to CodeDeploy. The upload uses
    the same options, with O(s3_endpoint_url) in place of O(endpoint_url) when that is set.
  - "State O(state=deployed) is idempotent. When the group's last attempted deployment is of
    the same object version and has not failed, no new deployment is created. The task then
    waits for that deployment (or reports it) and reports no change if nothing else
    changed. Use O(force=true) to deploy the same revision again."
  - Per-instance details come from C(ListDeploymentTargets) and C(BatchGetDeploymentTargets),
    or C(ListDeploymentInstances) and C(BatchGetDeploymentInstances) when the endpoint lacks
    the first two. They are best effort. When they cannot be read, RV(deployment.instances_note)
    says why, and the outcome still follows the deployment's status.
  - "IAM permissions: C(codedeploy:CreateDeployment), C(GetDeployment), C(GetDeploymentGroup),
    C(ListDeploymentTargets), C(BatchGetDeploymentTargets), C(GetDeploymentConfig) (in the
    console role), plus C(GetApplication) / C(CreateApplication),
    C(CreateDeploymentGroup) and C(iam:PassRole) for the ensure options,
    C(GetApplicationRevision) / C(RegisterApplicationRevision) for O(register), and
    C(s3:PutObject), C(s3:GetObject) (head) on the bundle key."
  - An endpoint that answers an operation with HTTP 501, C(UnknownOperationException) or
    the HTML error page moto sends for unimplemented operations is not retried, and the
    message names the operation and the endpoint.
seealso:
  - module: goship.deploy.s3_artifact
    description: The upload logic used for the bundle.
  - name: AppSpec file reference
    description: The format validated here.
    link: https://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file.html
  - name: CreateDeployment
    description: The API call behind O(state=deployed).
    link: https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_CreateDeployment.html
"""

EXAMPLES = r"""
# The standard Go service bundle, validated, pushed and deployed; connection options from
# the action group (in the lab CodeDeploy is moto, S3 is SeaweedFS).
- name: Deploy hello-svc 1.214 with CodeDeploy
  module_defaults:
    group/goship.deploy.aws: "{{ goship_aws }}"
  goship.deploy.codedeploy_revision:
    state: deployed
    endpoint_url: "{{ goship_aws_api_endpoint_url | default(omit) }}"
    s3_endpoint_url: "{{ goship_aws.endpoint_url | default(omit) }}"
    application: hello-svc
    deployment_group: hello-svc-production
    bundle:
      go_service:
        service: hello-svc
        version: "1.214"
        artifact: build/1.214/hello-svc_1.214_amd64.deb
        health_url: http://127.0.0.1:8080/healthz
    bundle_path: build/1.214/codedeploy/hello-svc_1.214.zip
    bucket: "{{ goship_artifact_bucket }}"
    key: hello-svc/1.214/codedeploy/hello-svc_1.214.zip
    deployment_config_name: CodeDeployDefault.HalfAtATime
    auto_rollback:
      enabled: true
      events: [DEPLOYMENT_FAILURE]
    description: hello-svc 1.214
    wait_timeout: 1800
  delegate_to: localhost
  run_once: true
  register: rollout

- name: Show the rollout
  ansible.builtin.debug:
    msg: "{{ rollout.report }}"

# Validate only (CI, no credentials needed): every problem with its path.
- name: Check the appspec of a hand-written bundle
  goship.deploy.codedeploy_revision:
    state: validated
    bundle:
      appspec: deploy/appspec.yml
      content:
        - src: deploy/scripts
          path: scripts
          mode: "0755"
        - src: build/app
          path: bin/app
  delegate_to: localhost

# Structured appspec, pushed and registered, with the group created when missing.
- name: Push a structured revision
  goship.deploy.codedeploy_revision:
    state: present
    application: reports
    register: true
    ensure_application: true
    bundle:
      format: tgz
      files:
        - source: bin/reports
          destination: /usr/local/bin
      hooks:
        ApplicationStart:
          - location: scripts/start.sh
            timeout: 60
            runas: root
      content:
        - src: dist/reports
          path: bin/reports
        - src: deploy/start.sh
          path: scripts/start.sh
          mode: "0755"
    bucket: acme-artifacts
    key: reports/2.3.0/codedeploy/reports_2.3.0.tgz
  delegate_to: localhost

- name: Make sure the application and the group exist, deploy without waiting
  goship.deploy.codedeploy_revision:
    state: deployed
    application: hello-svc
    deployment_group: hello-svc-staging
    ensure_application: true
    ensure_deployment_group:
      service_role_arn: arn:aws:iam::123456789012:role/codedeploy-service
      ec2_tag_set:
        - [{key: app, value: hello-svc}]
        - [{key: env, value: staging}]
    bundle:
      go_service: {service: hello-svc, version: "1.214", artifact: build/1.214/hello-svc_1.214_amd64.deb,
                   health_url: "http://127.0.0.1:8080/healthz"}
    bucket: acme-artifacts
    key: hello-svc/1.214/codedeploy/hello-svc_1.214.zip
    wait: false
  delegate_to: localhost
"""

RETURN = r"""
bundle:
  description: The bundle that was built.
  returned: always, unless the bundle could not be built
  type: dict
  contains:
    path:
      description: O(bundle_path), V(null) when not set.
      type: str
    format:
      description: Archive format (the revision's C(bundleType)).
      type: str
      sample: zip
    sha256:
      description: SHA-256 of the bundle bytes.
      type: str
    size:
      description: Size in bytes.
      type: int
    entries:
      description: Paths in the bundle, sorted.
      type: list
      elements: str
      sample: [appspec.yml, pkg, pkg/hello-svc_1.214_amd64.deb, scripts, scripts/install.sh]
    appspec:
      description: The C(appspec.yml) text in the bundle.
      type: str
validation:
  description: What validation found. Problems fail the task before anything is uploaded.
  returned: always, unless the bundle could not be built
  type: dict
  contains:
    ok:
      description: V(true) when there are no problems.
      type: bool
    problems:
      description: Each problem, C({path, message, line}). C(path) is the place in the appspec, for example C(hooks.AfterInstall[0].timeout).
      type: list
      elements: dict
    warnings:
      description: Each warning, same shape. They are also shown as task warnings.
      type: list
      elements: dict
artifact:
  description: The uploaded bundle, as returned by the C(s3_artifact) upload.
  returned: with O(state=present) and O(state=deployed), not in check mode
  type: dict
  contains:
    bucket:
      description: Bucket.
      type: str
    key:
      description: Key.
      type: str
    version_id:
      description: S3 version id of the bundle (V(null) in an unversioned bucket).
      type: str
    etag:
      description: ETag without quotes.
      type: str
    sha256:
      description: SHA-256 stored as object metadata.
      type: str
    size:
      description: Size in bytes.
      type: int
    url:
      description: HTTP(S) URL of the object.
      type: str
    changed:
      description: Whether the bundle was uploaded (V(false) when the object already held these bytes).
      type: bool
revision:
  description: The revision location that was registered or deployed (CodeDeploy's C(RevisionLocation)).
  returned: with O(state=present) and O(state=deployed), not in check mode
  type: dict
  sample:
    revisionType: S3
    s3Location: {bucket: goship-artifacts, key: hello-svc/1.214/codedeploy/hello-svc_1.214.zip, bundleType: zip,
                 version: 3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY, eTag: 9b2cf535f27731c974343645a3985328}
application_created:
  description: Whether O(ensure_application) created the application.
  returned: when O(ensure_application=true)
  type: bool
deployment_group_created:
  description: Whether O(ensure_deployment_group) created the group.
  returned: when O(ensure_deployment_group) is set
  type: bool
registered:
  description: Whether the revision was registered now (V(false) when it already was).
  returned: when O(register=true)
  type: bool
deployment_id:
  description: The deployment that was created (or, see the notes, found).
  returned: with O(state=deployed), not in check mode
  type: str
  sample: d-4J8Y1FVKB
deployment_created:
  description: V(false) when the group's last deployment already was of this revision and no new one was created.
  returned: with O(state=deployed), not in check mode
  type: bool
status:
  description: Last status of the deployment (C(Created), C(Queued), C(InProgress), C(Succeeded), C(Failed), C(Stopped), ...).
  returned: with O(state=deployed), not in check mode
  type: str
  sample: Succeeded
deployment:
  description:
    - One summary of the rollout. Without O(wait), it holds the deployment's own fields
      and counts but no per-instance details.
  returned: with O(state=deployed), not in check mode (also on failure)
  type: dict
  contains:
    deployment_id:
      description: Deployment id.
      type: str
    application:
      description: Application.
      type: str
    deployment_group:
      description: Deployment group.
      type: str
    deployment_config_name:
      description: Deployment configuration used.
      type: str
    status:
      description: Deployment status.
      type: str
    created:
      description: When it was created (ISO 8601).
      type: str
    completed:
      description: When it ended (ISO 8601), V(null) while running.
      type: str
    duration_s:
      description: Seconds from start (or creation) to completion.
      type: float
    revision:
      description: C({bucket, key, bundle_type, version, etag}) as CodeDeploy reports it.
      type: dict
    error:
      description: C({code, message}) of a failed or stopped deployment, for example C(HEALTH_CONSTRAINTS).
      type: dict
    counts:
      description: Instances per status, C({total, succeeded, failed, skipped, in_progress, pending, ready}).
      type: dict
      sample: {total: 3, succeeded: 1, failed: 1, skipped: 1, in_progress: 0, pending: 0, ready: 0}
    instances:
      description: Per instance, sorted by instance id.
      type: list
      elements: dict
      contains:
        instance_id:
          description: EC2 instance id (or on-premises name).
          type: str
        status:
          description: C(Succeeded), C(Failed), C(Skipped), C(InProgress), C(Pending), ...
          type: str
        duration_s:
          description: Seconds from its first event's start to its last event's end.
          type: float
        events:
          description: Every lifecycle event, C({name, status, start, end, duration_s, error_code, script_name, message, log_tail}).
          type: list
          elements: dict
        failure:
          description: The first failed event, C({event, error_code, script_name, message, log_tail}), or V(null).
          type: dict
    instances_source:
      description: V(targets) or V(instances) (the older API), V(null) when no details could be read.
      type: str
    instances_note:
      description: Why there are no per-instance details (for example the endpoint does not implement the calls).
      type: str
    rollback:
      description: C({deployment_id, status, triggering_deployment_id, message}) when the deployment was rolled back (or is a rollback).
      type: dict
    status_messages:
      description: CodeDeploy's status messages.
      type: list
      elements: str
report:
  description: The summary as text lines, the same text a failure's C(msg) carries.
  returned: with O(state=deployed), not in check mode
  type: list
  elements: str
  sample:
    - "CodeDeploy deployment d-4J8Y1FVKB of hello-svc to hello-svc-lab (CodeDeployDefault.OneAtATime): Succeeded after 1m42s"
    - "instances: 2 (2 succeeded, 0 failed)"
    - "  i-0a1b2c3d4e5f60718 Succeeded in 48.2s: ApplicationStop 0.4s, DownloadBundle 1.1s, ..."
problems:
  description: "On a validation failure, each problem as one line C(path: message)."
  returned: failure
  type: list
  elements: str
error:
  description: For AWS failures, the botocore error type, code, message, HTTP status and request id.
  returned: failure
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.goship.deploy.plugins.module_utils import aws
from ansible_collections.goship.deploy.plugins.module_utils import codedeploy as logic
from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_report as report
from ansible_collections.goship.deploy.plugins.module_utils import codedeploy_revision_bundle as revision_bundle
from ansible_collections.goship.deploy.plugins.module_utils import s3_artifact as s3_logic
from ansible_collections.goship.deploy.plugins.module_utils.codedeploy_bundle import (
    HAS_YAML,
    YAML_IMPORT_ERROR,
    BundleError,
)
from ansible_collections.goship.deploy.plugins.module_utils.codedeploy_errors import DeploymentFailed, WaitTimeout
from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError

GO_SERVICE_SPEC = dict(
    service=dict(type='str', required=True),
    version=dict(type='str', required=True),
    artifact=dict(type='path', required=True),
    health_url=dict(type='str', required=True),
    status_url=dict(type='str'),
    version_key=dict(type='str', no_log=False),
    migrations_dir=dict(type='path'),
    pg_env_file=dict(type='str'),
    migrations_table=dict(type='str'),
    binary_dir=dict(type='str'),
    unit_file=dict(type='path'),
    validate_timeout=dict(type='int'),
    validate_interval=dict(type='int'),
    timeouts=dict(type='dict'),
)

BUNDLE_SPEC = dict(
    format=dict(type='str', default='zip', choices=['zip', 'tgz', 'tar']),
    appspec=dict(type='path'),
    appspec_content=dict(type='str'),
    files=dict(type='list', elements='dict'),
    permissions=dict(type='list', elements='dict'),
    hooks=dict(type='dict'),
    file_exists_behavior=dict(type='str', choices=list(logic.FILE_EXISTS_BEHAVIORS)),
    os=dict(type='str', default='linux', choices=['linux', 'windows']),
    go_service=dict(type='dict', options=GO_SERVICE_SPEC),
    content=dict(type='list', elements='dict', options=dict(
        src=dict(type='path', required=True),
        path=dict(type='str'),
        mode=dict(type='raw'),
    )),
    mtime=dict(type='int'),
)

TAG_FILTER_SPEC = dict(
    key=dict(type='str', no_log=False),
    value=dict(type='str'),
    type=dict(type='str', choices=list(logic.TAG_FILTER_TYPES)),
)

ARGUMENT_SPEC = aws.aws_argument_spec(
    state=dict(type='str', default='present', choices=['validated', 'present', 'deployed']),
    bundle=dict(type='dict', required=True, options=BUNDLE_SPEC),
    bundle_path=dict(type='path'),
    bucket=dict(type='str'),
    key=dict(type='str', no_log=False),
    s3_endpoint_url=dict(type='str'),
    encryption=dict(type='str', default='AES256', choices=['AES256', 'aws:kms', 'none']),
    kms_key_id=dict(type='str', no_log=False),
    application=dict(type='str'),
    deployment_group=dict(type='str'),
    register=dict(type='bool', default=False),
    ensure_application=dict(type='bool', default=False),
    ensure_deployment_group=dict(type='dict', options=dict(
        service_role_arn=dict(type='str', required=True),
        ec2_tag_filters=dict(type='list', elements='dict', options=TAG_FILTER_SPEC),
        ec2_tag_set=dict(type='list', elements='list'),
        deployment_config_name=dict(type='str'),
    )),
    deployment_config_name=dict(type='str'),
    auto_rollback=dict(type='dict', options=dict(
        enabled=dict(type='bool', default=True),
        events=dict(type='list', elements='str', choices=list(logic.AUTO_ROLLBACK_EVENTS)),
    )),
    file_exists_behavior=dict(type='str', choices=list(logic.FILE_EXISTS_BEHAVIORS)),
    ignore_application_stop_failures=dict(type='bool'),
    description=dict(type='str'),
    force=dict(type='bool', default=False),
    wait=dict(type='bool', default=True),
    wait_timeout=dict(type='int', default=1800),
    poll_interval=dict(type='int', default=10),
)

EXTENSIONS = dict(zip=('.zip',), tgz=('.tgz', '.tar.gz'), tar=('.tar',))

REQUIRED_IF = [
    ('state', 'present', ['bucket', 'key']),
    ('state', 'deployed', ['bucket', 'key', 'application', 'deployment_group']),
    ('register', True, ['application']),
    ('ensure_application', True, ['application']),
]


def s3_params(params):
    """Connection options of the upload: the module's, with s3_endpoint_url as endpoint when set."""
    conn = dict((name, params.get(name)) for name in aws.CONNECTION_KEYS)
    if params.get('s3_endpoint_url'):
        conn['endpoint_url'] = params['s3_endpoint_url']
    return conn


def _deployment_problems(params):
    """Problems with the deployment options (auto_rollback, ensure_deployment_group)."""
    problems = []
    try:
        logic.normalize_auto_rollback(params['auto_rollback'])
    except ValueError as exc:
        problems.append(str(exc))
    group = params['ensure_deployment_group']
    if group:
        try:
            logic.tag_filters(group.get('ec2_tag_filters'), 'ensure_deployment_group.ec2_tag_filters')
            logic.tag_set(group.get('ec2_tag_set'))
        except ValueError as exc:
            problems.append(str(exc))
        if not group.get('ec2_tag_filters') and not group.get('ec2_tag_set'):
            problems.append('ensure_deployment_group needs ec2_tag_filters or ec2_tag_set (which instances to '
                            'deploy to)')
    if (group or params['ensure_application']) and not params['application']:
        problems.append('ensure_deployment_group and ensure_application need application')
    if group and not params['deployment_group']:
        problems.append('ensure_deployment_group needs deployment_group')
    return problems


def check_arguments(params):
    """Problems with the arguments, found before anything is built or any AWS call (messages)."""
    problems = list(revision_bundle.check_bundle_options(params['bundle']))
    if params['key'] is not None and (not params['key'].strip() or params['key'].endswith('/')):
        problems.append('key %r must name the bundle object, e.g. <app>/<version>/codedeploy/<app>_<version>.zip'
                        % params['key'])
    if not 1 <= params['wait_timeout'] <= 86400:
        problems.append('wait_timeout must be between 1 and 86400 seconds, got %d' % params['wait_timeout'])
    if not 1 <= params['poll_interval'] <= 3600:
        problems.append('poll_interval must be between 1 and 3600 seconds, got %d' % params['poll_interval'])
    try:
        s3_logic.validate_encryption(params['encryption'], params['kms_key_id'])
    except s3_logic.InvalidArgument as exc:
        problems.append(str(exc))
    problems += _deployment_problems(params)
    for label, conn in (('', params), ('', s3_params(params))):
        try:
            aws.check_connection_params(conn, label)
        except aws.ConnectionConfigError as exc:
            if str(exc) not in problems:
                problems.append(str(exc))
    return problems


def _build(module, params, result):
    """Build and validate the bundle, write bundle_path; the BuiltRevision."""
    built = revision_bundle.build_from_options(params['bundle'])
    result['bundle'] = built.to_dict(path=params['bundle_path'])
    result['validation'] = built.validation.to_dict()
    for warning in built.validation.warnings:
        module.warn('appspec: %s' % warning)
    if built.validation.problems:
        lines = [str(problem) for problem in built.validation.problems]
        raise BundleError(lines, message='the bundle is not valid, nothing was uploaded (%d problem(s)):\n%s'
                          % (len(lines), '\n'.join(lines)))
    key = params['key'] or ''
    if params['state'] != 'validated' and not key.endswith(EXTENSIONS[built.fmt]):
        module.warn('key %s does not end with .%s, the bundle format' % (key, built.fmt))
    if params['bundle_path']:
        changed = revision_bundle.write_bundle(params['bundle_path'], built.data, module.check_mode)
        result['changed'] = changed or result['changed']
    return built


def _upload(module, params, result, built):
    """Upload the bundle to S3; the revision (that exact object version)."""
    metadata = {}
    go_service = params['bundle'].get('go_service') or {}
    if go_service.get('version'):
        metadata['version'] = go_service['version']
    path = revision_bundle.bundle_file(built, params['bundle_path'], module.tmpdir)
    upload = revision_bundle.upload_bundle(s3_params(params), params['bucket'], params['key'], path,
                                           metadata=metadata, encryption=params['encryption'],
                                           kms_key_id=params['kms_key_id'])
    for warning in upload.pop('warnings', None) or []:
        module.warn(warning)
    result['artifact'] = dict((name, upload.get(name)) for name in ('bucket', 'key', 'version_id', 'etag', 'sha256',
                                                                    'size', 'url', 'changed'))
    result['changed'] = result['changed'] or upload['changed']
    if upload.get('version_id') in (None, '', 'null'):
        module.warn('bucket %s is not versioned: the revision names the key only, so instances get whatever '
                    'object is there when they download it' % params['bucket'])
    revision = logic.s3_revision(params['bucket'], params['key'], built.fmt, upload.get('version_id'),
                                 upload.get('etag'))
    result['revision'] = revision
    return revision


def _prepare(module, client, params, result, revision):
    """ensure_application, ensure_deployment_group, register; the existing group's info (or None)."""
    application, group = params['application'], params['deployment_group']
    if params['ensure_application']:
        result['application_created'] = logic.ensure_application(client, application, params)
        result['changed'] = result['changed'] or result['application_created']
    group_info = None
    if params['ensure_deployment_group']:
        spec = dict(params['ensure_deployment_group'])
        spec['deployment_config_name'] = spec.get('deployment_config_name') or params['deployment_config_name']
        created, warnings, group_info = logic.ensure_deployment_group(client, application, group, spec, params)
        for warning in warnings:
            module.warn(warning)
        result['deployment_group_created'] = created
        result['changed'] = result['changed'] or created
    if params['register']:
        result['registered'] = logic.register_revision(client, application, revision, params['description'], params)
        result['changed'] = result['changed'] or result['registered']
    return group_info


def _deploy(client, params, result, revision, group_info):
    """Create the deployment (unless this revision is already the group's), wait, report."""
    application, group = params['application'], params['deployment_group']
    existing = None
    if not params['force']:
        existing = logic.find_current_deployment(client, application, group, revision, params, group_info=group_info)
    if existing:
        deployment_id = existing['deploymentId']
        result.update(deployment_id=deployment_id, deployment_created=False)
    else:
        args = logic.create_deployment_args(
            application, group, revision, deployment_config_name=params['deployment_config_name'],
            description=params['description'], auto_rollback=params['auto_rollback'],
            file_exists_behavior=params['file_exists_behavior'],
            ignore_application_stop_failures=params['ignore_application_stop_failures'])
        deployment_id = logic.create_deployment(client, args, params)
        result.update(deployment_id=deployment_id, deployment_created=True, changed=True)

    if not params['wait']:
        info = existing or logic.get_deployment(client, deployment_id, params)
        summary = report.build_summary(info)
        result.update(status=summary['status'], deployment=summary, report=report.format_summary(summary))
        return
    info, timed_out, polls = logic.wait_for_deployment(client, deployment_id, params['wait_timeout'],
                                                       params['poll_interval'], params)
    summary = report.summarize(client, info, params)
    result.update(status=summary['status'], deployment=summary, report=report.format_summary(summary))
    if timed_out:
        raise WaitTimeout(report.timeout_message(summary, params['wait_timeout'], polls))
    if summary['status'] != 'Succeeded':
        raise DeploymentFailed(report.failure_message(summary))


def run(module, params, result):
    """Do the work; ``result`` is filled in as it goes (so failures can return what happened).

    Every failure is a GoshipError (bundle, upload, CodeDeploy call, failed deployment).
    """
    state = params['state']
    built = _build(module, params, result)
    if state == 'validated':
        return result
    if module.check_mode:
        result['changed'] = True
        return result
    revision = _upload(module, params, result, built)
    if not (params['ensure_application'] or params['ensure_deployment_group'] or params['register']
            or state == 'deployed'):
        return result
    client = logic.client_for(params)
    group_info = _prepare(module, client, params, result, revision)
    if state == 'deployed':
        _deploy(client, params, result, revision, group_info)
    return result


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)
    params = module.params
    problems = check_arguments(params)
    if problems:
        module.fail_json(msg='; '.join(problems), problems=problems)
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib('PyYAML'), exception=YAML_IMPORT_ERROR)
    if params['state'] != 'validated' and not module.check_mode:
        aws.require_boto3(module)

    result = dict(changed=False, state=params['state'])
    try:
        run(module, params, result)
    except GoshipError as exc:
        # What was done before the failure (bundle, artifact, deployment_id, ...) stays in the result.
        module.fail_json(**dict(result, **exc.result()))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
