#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_artifact
short_description: Keep deploy artifacts in S3 with a verified SHA-256 and their version ids
version_added: "0.1.0"
author: goship.deploy maintainers (@goship)
description:
  - Uploads, downloads, promotes, lists and deletes build artifacts (for example C(.deb)
    packages) in S3 or an S3-compatible server, so that the bytes that were built are
    provably the bytes that get installed.
  - Every object it uploads carries the SHA-256 of the whole file as user metadata
    C(sha256) (hex), next to the optional build metadata C(version), C(commit) and
    C(build-date). Single-part uploads also send it as the S3 checksum C(ChecksumSHA256), so
    the server refuses bytes that differ; multipart uploads send a SHA-256 checksum with
    every part. Downloads hash every byte and compare with that metadata, or with the hash
    the caller expects.
  - "O(state=present): uploads O(src) to O(key). When the object already holds the same
    SHA-256 and size nothing is uploaded and the task reports no change. Returns the new
    object's RV(version_id)."
  - "O(state=fetched): downloads O(key) (or one O(version_id)) to O(dest) on the host
    running the module, through a temporary file in the same directory that is renamed
    into place only after its SHA-256 matched. On a mismatch the temporary file is removed,
    O(dest) stays as it was and the task fails naming both hashes. When O(dest) already has
    the expected hash nothing is downloaded."
  - "O(state=promoted): copies an artifact from O(source) (another bucket, prefix, region,
    endpoint or account) to O(bucket)/O(key), then reads the copy back and checks its
    SHA-256. Nothing is copied when the destination already holds the expected hash."
  - "O(state=listed): returns the versions of O(key), newest first, with their SHA-256,
    size, date and metadata, which is what a rollback needs."
  - "O(state=absent): deletes O(key) (in a versioned bucket this adds a delete marker and
    keeps the versions) or one O(version_id) for good."
  - Unlike M(amazon.aws.s3_object), which compares the MD5 against the ETag (which is not an
    MD5 for multipart uploads) and does not return version ids, this module compares
    SHA-256 hashes and returns the object version.
options:
  state:
    description:
      - What to do, see the description.
    type: str
    choices: [present, fetched, promoted, listed, absent]
    default: present
  bucket:
    description:
      - Bucket name. With O(state=promoted), the destination bucket.
    type: str
    required: true
  key:
    description:
      - Object key, by convention C(<app>/<version>/<app>_<version>_<arch>.deb).
        With O(state=promoted), the destination key.
    type: str
    required: true
  src:
    description:
      - Local file to upload, on the host running the module (usually the controller, with
        C(delegate_to=localhost)). Required with O(state=present), not used otherwise.
    type: path
  dest:
    description:
      - Where to store the download on the host running the module. When it is an existing
        directory, the file is stored there under the last part of O(key).
      - Required with O(state=fetched), not used otherwise. Its directory must exist.
    type: path
  version_id:
    description:
      - Object version to download (O(state=fetched)) or to delete for good
        (O(state=absent)). Without it the latest version is used.
      - To promote an older version, set O(source.version_id).
    type: str
  sha256:
    description:
      - The SHA-256 (hex, optionally prefixed with V(sha256:)) the bytes must have.
      - With O(state=fetched) and O(state=promoted) this is checked instead of the object's
        C(sha256) metadata. If the object's metadata names a different hash the task fails
        before anything is downloaded or copied.
      - With O(state=present) the local O(src) must hash to it, or nothing is uploaded.
      - "An object without C(sha256) metadata (not uploaded by this module, for example a
        plain C(aws s3 cp) or C(put_object)) can only be fetched or promoted when this is
        set. The server's own C(ChecksumSHA256) is intentionally not accepted instead: it
        proves the bytes are intact, not that they are the artifact that was built. The
        failure message shows it when the server reports one."
    type: str
  metadata:
    description:
      - Object metadata to store with O(state=present) (and to add or override with
        O(state=promoted)), for example C(version), C(commit) and C(build-date).
      - Keys are lower-cased and may use letters, digits, C(-), C(_) and C(.). Values must
        be ASCII. C(sha256) is reserved and always set by the module.
      - When the object already holds the same bytes, differing metadata is only warned
        about; set O(force=true) to upload again with the new metadata.
    type: dict
  tags:
    description:
      - Object tags (at most 10) for O(state=present) and O(state=promoted).
      - When promoting without O(tags), a server-side copy keeps the source's tags and a
        streamed copy reads and sets them (a warning is given when they cannot be read).
    type: dict
  encryption:
    description:
      - Server-side encryption for uploaded and promoted objects.
      - V(AES256) is S3-managed keys (SSE-S3). V(aws:kms) uses KMS, with O(kms_key_id) or,
        without it, the account's default C(aws/s3) key. V(none) sends no encryption
        header (the bucket's default encryption, if any, still applies); use it for S3
        servers that do not implement server-side encryption.
    type: str
    choices: [AES256, 'aws:kms', none]
    default: AES256
  kms_key_id:
    description:
      - KMS key id, ARN or alias for O(encryption=aws:kms). Not allowed with other values of
        O(encryption).
    type: str
  source:
    description:
      - The object to promote from, with O(state=promoted) (required there).
      - Connection options that are not set here are taken from the module's own (the
        destination's). Credentials are taken as a whole, so when any of
        O(source.profile), O(source.access_key), O(source.secret_key) or
        O(source.session_token) is set, none of the destination's credentials are used
        for the source.
    type: dict
    suboptions:
      bucket:
        description: Source bucket.
        type: str
        required: true
      key:
        description: Source key. Defaults to O(key).
        type: str
      version_id:
        description: Source version. Defaults to the latest version.
        type: str
      region:
        description: Region of the source bucket.
        type: str
        aliases: [aws_region]
      endpoint_url:
        description: Endpoint of the source bucket.
        type: str
        aliases: [aws_endpoint_url, s3_url]
      profile:
        description: Profile for the source.
        type: str
        aliases: [aws_profile]
      access_key:
        description: Access key id for the source.
        type: str
        aliases: [aws_access_key_id, aws_access_key]
      secret_key:
        description: Secret access key for the source.
        type: str
        aliases: [aws_secret_access_key, aws_secret_key]
      session_token:
        description: Session token for the source.
        type: str
        aliases: [aws_session_token]
      validate_certs:
        description: Verify the source endpoint's TLS certificate.
        type: bool
      aws_ca_bundle:
        description: CA bundle for the source endpoint.
        type: path
      retries:
        description: Retries for throttling and 5xx errors of the source.
        type: int
  promote_method:
    description:
      - How O(state=promoted) copies.
      - V(copy) is a server-side C(CopyObject) made with the destination's connection. No
        data passes through the host running the module, but the destination's credentials
        must be allowed to read the source and both buckets must be on the same service.
      - V(stream) downloads the source with the source's connection into a temporary file
        (verified), then uploads it with the destination's connection. Works across
        accounts, endpoints and S3 implementations.
      - V(auto) uses V(copy) when source and destination use the same endpoint and the same
        credentials, else V(stream). Objects over 5 GiB are always streamed.
    type: str
    choices: [auto, copy, stream]
    default: auto
  force:
    description:
      - Upload (O(state=present)), download (O(state=fetched)) or copy (O(state=promoted))
        even when the target already holds the same SHA-256.
    type: bool
    default: false
  multipart_threshold_mb:
    description:
      - Files and objects of this many MiB or more are uploaded in parts and downloaded with
        parallel ranged requests.
    type: int
    default: 64
  multipart_chunk_mb:
    description:
      - Part size in MiB for multipart uploads and ranged downloads (at least 5). It grows
        automatically so that no upload needs more than 10000 parts.
    type: int
    default: 16
  max_concurrency:
    description:
      - Parts or ranges transferred at the same time. Each one holds up to one part in
        memory during uploads.
    type: int
    default: 10
  mode:
    description:
      - Permissions of O(dest) with O(state=fetched), for example V('0644'). When not set an
        existing O(dest) keeps its mode and a new one gets C(0666) minus the umask.
      - The downloaded file gets its mode, owner and group before it is renamed into place.
extends_documentation_fragment:
  - goship.deploy.aws
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    description:
      - Hashes the local file and reads object metadata, then reports what would be uploaded,
        downloaded, copied or deleted without doing it. RV(version_id) is V(null) for an
        upload or copy that would create a new version.
  diff_mode:
    support: full
    description:
      - Shows the SHA-256, size and version of the object (or of O(dest)) before and after.
  platform:
    support: full
    platforms: posix
    description:
      - Runs on the host the task targets (on the controller when the task is delegated to
        C(localhost)), which needs boto3 and botocore. O(src) and O(dest) are paths on that host.
  action_group:
    support: full
    membership: [goship.deploy.aws]
    description:
      - Use C(group/goship.deploy.aws) in C(module_defaults) to set the connection options
        (O(region), O(endpoint_url), credentials) of all goship.deploy AWS modules at once.
notes:
  - Only the bytes are compared for idempotence (C(sha256) metadata and size). Tags,
    metadata and encryption of an object that already holds the same bytes are not changed.
  - Uploads over O(multipart_threshold_mb) are multipart. The object's S3 C(ChecksumSHA256)
    is then a checksum of the part checksums (C(...-N)), so verification always uses the
    C(sha256) metadata.
  - If O(src) changes while it is being uploaded the task fails. A single-part upload is
    refused by the server (C(BadDigest)), a multipart upload is aborted before it completes.
  - The file is hashed on the host running the module, so the whole file is read once
    before an upload, and the downloaded file is hashed as it arrives.
  - In an unversioned bucket RV(version_id) is V(null) (or the string C(null), as reported
    by the server), O(state=absent) removes the object for good and a promotion that fails
    verification cannot restore the previous destination object.
  - O(state=absent) with O(version_id) also removes a delete marker with that id, which
    restores the previous version as the latest.
  - O(mode), O(owner), O(group) and the other file attributes apply only to O(dest) with
    O(state=fetched). O(unsafe_writes) is ignored; writes are always atomic.
seealso:
  - module: amazon.aws.s3_object
    description: General-purpose S3 object management.
  - name: Checking object integrity in Amazon S3
    description: How S3 computes and stores SHA-256 checksums, including for multipart uploads.
    link: https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html
"""

EXAMPLES = r"""
# Connection options once for every goship.deploy AWS module (here on a block; a play's
# module_defaults works the same way).
- name: Upload on the controller, download on every host
  module_defaults:
    group/goship.deploy.aws:
      region: "{{ goship_aws.region }}"
      endpoint_url: "{{ goship_aws.endpoint_url | default(omit) }}"
      access_key: "{{ goship_aws.access_key | default(omit) }}"
      secret_key: "{{ goship_aws.secret_key | default(omit) }}"
  block:
    - name: Upload the package built on the controller
      goship.deploy.s3_artifact:
        bucket: "{{ goship_artifact_bucket }}"
        key: "{{ goship_app }}/{{ version }}/{{ goship_app }}_{{ version }}_amd64.deb"
        src: "build/{{ goship_app }}_{{ version }}_amd64.deb"
        metadata:
          version: "{{ version }}"
          commit: "{{ commit }}"
          build-date: "{{ build_date }}"
        tags:
          app: "{{ goship_app }}"
      delegate_to: localhost
      run_once: true
      register: artifact

    - name: Download it on every host, verified against the hash the build recorded
      goship.deploy.s3_artifact:
        state: fetched
        bucket: "{{ goship_artifact_bucket }}"
        key: "{{ artifact.key }}"
        version_id: "{{ artifact.version_id }}"
        sha256: "{{ artifact.sha256 }}"
        dest: /var/cache/goship/
        mode: "0644"
      become: true

- name: Promote a staging build to the production account (streamed, different profiles)
  goship.deploy.s3_artifact:
    state: promoted
    bucket: acme-artifacts-production
    key: hello-svc/1.214/hello-svc_1.214_amd64.deb
    profile: production
    region: eu-central-1
    encryption: "aws:kms"
    kms_key_id: alias/artifacts
    source:
      bucket: acme-artifacts-staging
      profile: staging
      region: eu-west-1
  delegate_to: localhost

- name: Versions of a key, newest first, for a rollback
  goship.deploy.s3_artifact:
    state: listed
    bucket: goship-artifacts
    key: hello-svc/1.214/hello-svc_1.214_amd64.deb
  register: history
  delegate_to: localhost
# history.versions[1].version_id is the one before the latest

- name: Lab S3 without server-side encryption
  goship.deploy.s3_artifact:
    bucket: goship-artifacts
    key: tools/report.tar.gz
    src: dist/report.tar.gz
    encryption: none
    endpoint_url: http://172.29.77.1:8333
  delegate_to: localhost

- name: Delete one version for good
  goship.deploy.s3_artifact:
    state: absent
    bucket: goship-artifacts
    key: hello-svc/1.213/hello-svc_1.213_amd64.deb
    version_id: 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY
  delegate_to: localhost
"""

RETURN = r"""
bucket:
  description: The bucket (the destination with O(state=promoted)).
  returned: success
  type: str
  sample: goship-artifacts
key:
  description: The key (the destination with O(state=promoted)).
  returned: success
  type: str
  sample: hello-svc/1.214/hello-svc_1.214_amd64.deb
version_id:
  description:
    - The object version uploaded, found unchanged, copied to, downloaded or deleted.
    - V(null) in check mode when a new version would be created, and for unversioned buckets
      on servers that do not report one.
  returned: success, except with O(state=listed)
  type: str
  sample: 3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY
sha256:
  description:
    - Hex SHA-256 of the object's bytes. With O(state=present) the hash of O(src); with
      O(state=fetched) and O(state=promoted) the verified hash; with O(state=absent) the
      C(sha256) metadata of what was deleted (V(null) if unknown).
  returned: success, except with O(state=listed)
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
sha256_source:
  description: Where the expected hash came from, V(metadata) (the object's C(sha256)) or V(caller) (the O(sha256) option).
  returned: with O(state=fetched) and O(state=promoted)
  type: str
  sample: metadata
size:
  description: Size in bytes.
  returned: with O(state=present), O(state=fetched) and O(state=promoted)
  type: int
  sample: 5242880
etag:
  description: The S3 ETag, without quotes. Not an MD5 for multipart uploads.
  returned: with O(state=present), O(state=fetched) and O(state=promoted)
  type: str
  sample: 9b2cf535f27731c974343645a3985328-3
url:
  description: HTTP(S) URL of the object (path style when O(endpoint_url) is set).
  returned: success
  type: str
  sample: http://172.29.77.1:8333/goship-artifacts/hello-svc/1.214/hello-svc_1.214_amd64.deb
server_side_encryption:
  description: Server-side encryption the server reports for the object (V(null) when none is reported).
  returned: with O(state=present) and O(state=promoted)
  type: str
  sample: AES256
dest:
  description: Path of the downloaded file (O(dest) itself, or the file inside that directory).
  returned: with O(state=fetched)
  type: str
  sample: /var/cache/goship/hello-svc_1.214_amd64.deb
metadata:
  description: The object's user metadata.
  returned: with O(state=fetched)
  type: dict
  sample: {sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, version: "1.214"}
method:
  description: How the promotion copied, V(copy) (server-side) or V(stream).
  returned: with O(state=promoted)
  type: str
  sample: copy
source:
  description: The promoted object, with the version that was read.
  returned: with O(state=promoted)
  type: dict
  sample: {bucket: staging-artifacts, key: hello-svc/1.214/hello-svc_1.214_amd64.deb, version_id: 0aC1...}
verified:
  description: V(true) when the promoted copy was read back and matched the hash.
  returned: with O(state=promoted) when something was copied
  type: bool
  sample: true
versions:
  description: The versions of the key, newest first. Delete markers are not included.
  returned: with O(state=listed)
  type: list
  elements: dict
  contains:
    version_id:
      description: Version id.
      type: str
    is_latest:
      description: Whether this is the current version.
      type: bool
    sha256:
      description: The version's C(sha256) metadata, V(null) for objects not uploaded by this module.
      type: str
    size:
      description: Size in bytes.
      type: int
    etag:
      description: ETag without quotes.
      type: str
    last_modified:
      description: Upload time, ISO 8601.
      type: str
      sample: "2025-05-04T10:11:12+00:00"
    metadata:
      description: User metadata (C(sha256), C(version), C(commit), C(build-date), ...).
      type: dict
latest_is_delete_marker:
  description: With O(state=listed), whether the key currently reads as deleted.
  returned: with O(state=listed)
  type: bool
  sample: false
delete_marker:
  description: With O(state=absent), whether a delete marker was created (versioned bucket, no O(version_id)) or removed (O(version_id) named one).
  returned: with O(state=absent)
  type: bool
  sample: true
delete_marker_version_id:
  description: Version id of the delete marker that was created.
  returned: with O(state=absent)
  type: str
error:
  description: For AWS failures, the botocore error type, code, message, HTTP status and request id.
  returned: failure
  type: dict
  sample: {type: ClientError, code: NoSuchBucket, http_status: 404, request_id: 17F2A0B1C, operation: HeadBucket}
expected_sha256:
  description: On a hash mismatch, the hash the bytes should have had.
  returned: failure
  type: str
actual_sha256:
  description: On a hash mismatch, the hash they had.
  returned: failure
  type: str
"""

import os
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.goship.deploy.plugins.module_utils import aws
from ansible_collections.goship.deploy.plugins.module_utils import s3_artifact as logic

MiB = 1024 * 1024

SOURCE_SPEC = dict(
    bucket=dict(type='str', required=True),
    key=dict(type='str', no_log=False),
    version_id=dict(type='str'),
    **aws.connection_suboptions()
)

ARGUMENT_SPEC = aws.aws_argument_spec(
    state=dict(type='str', default='present', choices=['present', 'fetched', 'promoted', 'listed', 'absent']),
    bucket=dict(type='str', required=True),
    key=dict(type='str', required=True, no_log=False),
    src=dict(type='path'),
    dest=dict(type='path'),
    version_id=dict(type='str'),
    sha256=dict(type='str'),
    metadata=dict(type='dict'),
    tags=dict(type='dict'),
    encryption=dict(type='str', default='AES256', choices=['AES256', 'aws:kms', 'none']),
    kms_key_id=dict(type='str', no_log=False),
    source=dict(type='dict', options=SOURCE_SPEC),
    promote_method=dict(type='str', default='auto', choices=['auto', 'copy', 'stream']),
    force=dict(type='bool', default=False),
    multipart_threshold_mb=dict(type='int', default=64),
    multipart_chunk_mb=dict(type='int', default=16),
    max_concurrency=dict(type='int', default=10),
)

REQUIRED_IF = [
    ('state', 'present', ['src']),
    ('state', 'fetched', ['dest']),
    ('state', 'promoted', ['source']),
]

# Options without a default that only make sense for some states.
OPTION_STATES = dict(
    src=('present',),
    dest=('fetched',),
    version_id=('fetched', 'absent'),
    sha256=('present', 'fetched', 'promoted'),
    metadata=('present', 'promoted'),
    tags=('present', 'promoted'),
    kms_key_id=('present', 'promoted'),
    source=('promoted',),
    mode=('fetched',),
    owner=('fetched',),
    group=('fetched',),
)


def check_arguments(params):
    """Problems with the arguments, found before any AWS call (a list of messages)."""
    problems = []
    state = params['state']
    for name, states in OPTION_STATES.items():
        if params.get(name) not in (None, '', {}) and state not in states:
            problems.append('%s is not used with state=%s (only with %s)' % (name, state, ', '.join(states)))
    if params['force'] and state not in ('present', 'fetched', 'promoted'):
        problems.append('force is not used with state=%s' % state)
    if not params['key'] or not params['key'].strip():
        problems.append('key must not be empty')
    if params['key'] and params['key'].endswith('/') and state in ('present', 'promoted'):
        problems.append('key %r ends with "/": name the object, e.g. <app>/<version>/<file>' % params['key'])
    checks = (
        lambda: logic.validate_encryption(params['encryption'], params['kms_key_id']),
        lambda: logic.normalize_sha256(params['sha256']),
        lambda: logic.normalize_metadata(params['metadata']),
        lambda: logic.normalize_tags(params['tags']),
    )
    for check in checks:
        try:
            check()
        except logic.InvalidArgument as exc:
            problems.append(str(exc))
    if not 5 <= params['multipart_chunk_mb'] <= 5120:
        problems.append('multipart_chunk_mb must be between 5 and 5120 (S3 part size limits), got %d'
                        % params['multipart_chunk_mb'])
    if not 1 <= params['multipart_threshold_mb'] <= 5120:
        problems.append('multipart_threshold_mb must be between 1 and 5120 (S3 allows 5 GiB in one PUT), got %d'
                        % params['multipart_threshold_mb'])
    if not 1 <= params['max_concurrency'] <= 64:
        problems.append('max_concurrency must be between 1 and 64, got %d' % params['max_concurrency'])
    for label, conn in (('', params), ('source', source_params(params))):
        if label and state != 'promoted':
            continue
        try:
            aws.check_connection_params(conn, label)
        except aws.ConnectionConfigError as exc:
            problems.append(str(exc))
    return problems


def source_params(params):
    """Connection options of the promotion source (inheriting from the destination's)."""
    return aws.inherit_connection(params.get('source') or {}, params)


def transfer_settings(params):
    return logic.TransferSettings(
        multipart_threshold=params['multipart_threshold_mb'] * MiB,
        multipart_chunksize=params['multipart_chunk_mb'] * MiB,
        max_concurrency=params['max_concurrency'],
    )


def _summary_text(summary):
    if not summary:
        return ''
    return ''.join('%s: %s\n' % (name, summary.get(name)) for name in ('sha256', 'size', 'version_id')
                   if name in summary)


def _diff(module, result, before, after, header):
    if module._diff:
        result['diff'] = dict(before=_summary_text(before), after=_summary_text(after),
                              before_header=header, after_header=header)


def run(module, params):
    state = params['state']
    bucket, key = params['bucket'], params['key']
    transfer = transfer_settings(params)
    pool = max(10, params['max_concurrency'] + 2)
    client = aws.client('s3', params, max_pool_connections=pool)
    header = 's3://%s/%s' % (bucket, key)

    if state == 'present':
        result = logic.upload(client, bucket, key, params['src'], metadata=params['metadata'], tags=params['tags'],
                              encryption=params['encryption'], kms_key_id=params['kms_key_id'],
                              expected_sha256=params['sha256'], force=params['force'], transfer=transfer,
                              check_mode=module.check_mode)
        after = dict(result, version_id=result['version_id'] or '(new version)') if result['changed'] else result['before']
        _diff(module, result, result['before'], after, header)

    elif state == 'fetched':
        def before_replace(tmp_path):
            module.set_fs_attributes_if_different(module.load_file_common_arguments(params, path=tmp_path), False)
        result = logic.fetch(client, bucket, key, params['dest'], version_id=params['version_id'],
                             expected_sha256=params['sha256'], force=params['force'], transfer=transfer,
                             check_mode=module.check_mode, before_replace=before_replace)
        file_args = module.load_file_common_arguments(params, path=result['dest'])
        if not result['changed'] or module.check_mode:
            if os.path.exists(result['dest']):
                result['changed'] = module.set_fs_attributes_if_different(file_args, result['changed'])
        before = dict(sha256=result['before_sha256']) if result['before_sha256'] else None
        after = dict(sha256=result['sha256'], size=result['size'], version_id=result['version_id'])
        _diff(module, result, before, after if result['changed'] else before, result['dest'])

    elif state == 'promoted':
        src = dict(params['source'])
        src['key'] = src.get('key') or key
        src_conn = source_params(params)
        method = params['promote_method']
        if method == 'auto':
            method = 'copy' if aws.same_connection(src_conn, params) else 'stream'
        src_client = client if aws.same_connection(src_conn, params) and src_conn.get('region') == params.get('region') \
            else aws.client('s3', src_conn, max_pool_connections=pool)
        result = logic.promote(src_client, client, src, bucket, key, expected_sha256=params['sha256'], method=method,
                               metadata=params['metadata'], tags=params['tags'], encryption=params['encryption'],
                               kms_key_id=params['kms_key_id'], force=params['force'], transfer=transfer,
                               check_mode=module.check_mode, tmpdir=module.tmpdir)
        after = dict(result, version_id=result['version_id'] or '(new version)') if result['changed'] else result['before']
        _diff(module, result, result['before'], after, header)

    elif state == 'listed':
        result = logic.list_versions(client, bucket, key, transfer=transfer)

    else:
        result = logic.delete(client, bucket, key, version_id=params['version_id'], check_mode=module.check_mode)
        before = dict(sha256=result['sha256'], version_id=result['version_id']) if result['changed'] else None
        _diff(module, result, before, None, header + (' (version %s)' % params['version_id'] if params['version_id'] else ''))

    for warning in result.pop('warnings', None) or []:
        module.warn(warning)
    result.pop('before', None)
    result.pop('before_sha256', None)
    return result


def main(module=None):
    """`module` is given when the action plugin runs this on the controller, in its own process."""
    module = module or AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF,
                                     add_file_common_args=True, supports_check_mode=True)
    aws.require_boto3(module)
    params = module.params
    problems = check_arguments(params)
    if problems:
        module.fail_json(msg='; '.join(problems), problems=problems)

    state = params['state']
    base = dict(changed=False, bucket=params['bucket'], key=params['key'])
    sse = params['encryption'] if params['encryption'] != 'none' else None
    try:
        result = run(module, params)
    except logic.S3Error as exc:
        conn = source_params(params) if exc.side == 'source' else params
        msg = aws.describe_error(exc.exc, exc.what, bucket=exc.bucket, key=exc.key, version_id=exc.version_id,
                                 params=conn, sse=sse)
        module.fail_json(msg=msg, error=aws.error_details(exc.exc), **base)
    except logic.ArtifactError as exc:
        details = dict(exc.details)
        details.pop('bucket', None)
        details.pop('key', None)
        module.fail_json(msg=exc.msg, **dict(base, **details))
    except aws.ConnectionConfigError as exc:
        module.fail_json(msg=str(exc), **base)
    except (aws.BotoCoreError, aws.ClientError) as exc:
        module.fail_json(msg=aws.describe_error(exc, 'state=%s for s3://%s/%s' % (state, params['bucket'], params['key']),
                                                bucket=params['bucket'], key=params['key'], params=params, sse=sse),
                         error=aws.error_details(exc), **base)
    except Exception as exc:  # anything unforeseen: one line, the traceback only with -vvv
        module.fail_json(msg='state=%s for s3://%s/%s failed unexpectedly: %s: %s'
                         % (state, params['bucket'], params['key'], type(exc).__name__, exc),
                         exception=traceback.format_exc(), **base)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
