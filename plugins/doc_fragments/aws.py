# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Connection options of every goship.deploy AWS module (plugins/module_utils/aws.py)."""

    DOCUMENTATION = r"""
options:
  region:
    description:
      - AWS region, for example V(eu-central-1). S3-compatible servers accept any region name
        (the lab uses V(us-east-1)).
      - When not set, E(AWS_REGION) or E(AWS_DEFAULT_REGION) is used, then the region of the
        profile.
    type: str
    aliases: [aws_region]
  endpoint_url:
    description:
      - URL of the service instead of the AWS endpoint, for S3-compatible servers such as
        SeaweedFS or MinIO, for example V(http://172.29.77.1:8333). Path-style addressing
        is used when it is set.
      - When not set, E(AWS_URL) or E(AWS_ENDPOINT_URL) is used.
    type: str
    aliases: [aws_endpoint_url, s3_url]
  profile:
    description:
      - Named profile from C(~/.aws/config) / C(~/.aws/credentials) on the host running the
        module.
      - When not set, E(AWS_PROFILE) or E(AWS_DEFAULT_PROFILE) is used.
      - Cannot be combined with O(access_key), O(secret_key) or O(session_token), also not
        when one side comes from the environment.
    type: str
    aliases: [aws_profile]
  access_key:
    description:
      - AWS access key ID. Needs O(secret_key).
      - When not set, E(AWS_ACCESS_KEY_ID) or E(AWS_ACCESS_KEY) is used.
      - When neither keys nor a profile are given, boto3's default chain applies
        (environment, C(~/.aws), container or instance role).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description:
      - AWS secret access key. Never logged.
      - When not set, E(AWS_SECRET_ACCESS_KEY) or E(AWS_SECRET_KEY) is used.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description:
      - Session token for temporary credentials. Never logged.
      - When not set, E(AWS_SESSION_TOKEN) is used.
    type: str
    aliases: [aws_session_token]
  validate_certs:
    description:
      - Verify the endpoint's TLS certificate. Set V(false) only for lab endpoints with
        self-signed certificates; prefer O(aws_ca_bundle).
    type: bool
    default: true
  aws_ca_bundle:
    description:
      - CA bundle (PEM file on the host running the module) used to verify the endpoint's
        certificate. When not set, E(AWS_CA_BUNDLE) is used.
    type: path
  retries:
    description:
      - How often a request is retried when the service throttles (C(SlowDown),
        C(Throttling), HTTP 429/503) or answers with another 5xx error, with exponential
        backoff (botocore C(standard) retry mode).
      - An endpoint that cannot be connected to (refused, unreachable, TLS handshake failure)
        is given up after 2 attempts of at most 5 seconds each, whatever this is set to, so
        a wrong O(endpoint_url) fails within seconds. Reads time out after 60 seconds
        without data.
    type: int
    default: 5
requirements:
  - python >= 3.9
  - boto3 >= 1.26 and botocore >= 1.29 on the host running the module
notes:
  - Environment variables and C(~/.aws) files are read on the host that runs the module,
    not on the controller, unless the task is delegated to C(localhost).
  - "All goship.deploy AWS modules belong to the action group C(goship.deploy.aws), so the
    connection options can be set once for a play with
    C(module_defaults: {group/goship.deploy.aws: {region: ..., endpoint_url: ...}})."
  - Errors are reported as one message that says what failed and what to check (missing
    bucket, access denied, unknown access key, wrong secret key, expired token, unreachable
    endpoint, missing region or profile). The botocore error code, HTTP status and request
    id are returned in C(error).
"""
