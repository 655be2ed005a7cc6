# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deploy artifacts in S3 with a verified SHA-256: the logic behind goship.deploy.s3_artifact.

No Ansible here: every function takes boto3 S3 clients and plain arguments, returns a plain
dict and raises an :class:`ArtifactError` subclass on failure.  AWS failures come out as
:class:`S3Error` carrying the botocore exception; ``aws.describe_error`` turns that into a
message.

The contract with the objects in S3:

* user metadata ``sha256``: hex SHA-256 of the whole object, written by :func:`upload` before
  any byte is sent.  Verification (:func:`fetch`, :func:`promote`) and idempotence
  (same ``sha256`` and size means "already there") read it.  Optional metadata
  ``version``, ``commit``, ``build-date`` describe the build.
* single-part uploads also send the S3 checksum ``ChecksumSHA256`` of the body, so the
  server refuses (``BadDigest``) bytes that differ from what was hashed.  Multipart uploads
  send a ``ChecksumSHA256`` per part (``ChecksumAlgorithm=SHA256``); the object's S3 checksum
  is then a checksum of checksums, which is why the full-object hash lives in metadata.
* an object without ``sha256`` metadata was not uploaded by us: it is only fetched or
  promoted when the caller passes the expected hash (see :func:`resolve_expected_sha256`).

Transfers use the ``multipart_threshold``, ``multipart_chunksize`` and ``max_concurrency``
attributes of a boto3 ``TransferConfig`` (or :class:`TransferSettings`): parts are sent and
ranges fetched by a thread pool, like boto3's managed transfers, while the data is hashed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import os
import re
import shutil
import tempfile
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

try:
    from urllib.parse import quote, urlencode
except ImportError:  # pragma: no cover - Python 2 is not supported
    raise

try:
    from botocore.exceptions import BotoCoreError, ClientError
    HAS_BOTOCORE = True
except ImportError:  # the module reports the missing library; keep this importable
    HAS_BOTOCORE = False

    class BotoCoreError(Exception):  # type: ignore[no-redef]
        pass

    class ClientError(Exception):  # type: ignore[no-redef]
        def __init__(self, error_response, operation_name):
            super(ClientError, self).__init__(error_response.get('Error', {}).get('Message'))
            self.response = error_response
            self.operation_name = operation_name

from ansible_collections.goship.deploy.plugins.module_utils.file_ops import (
    AtomicFile,
    CHUNK_SIZE,
    hash_fd_range,
    hash_file,
    pread_exact,
    pwrite_all,
)

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
MIN_PART_SIZE = 5 * MiB
MAX_PARTS = 10000
MAX_COPY_SIZE = 5 * GiB           # larger objects are promoted by streaming
SHA256_RE = re.compile(r'^[0-9a-f]{64}$')
METADATA_KEY_RE = re.compile(r'^[a-z0-9][a-z0-9._-]*$')
RESERVED_METADATA = ('sha256',)
CONTENT_TYPES = {'.deb': 'application/vnd.debian.binary-package'}
ENCRYPTION_CHOICES = ('AES256', 'aws:kms', 'none')


class TransferSettings(object):
    """Transfer tuning; the same attribute names as ``boto3.s3.transfer.TransferConfig``."""

    def __init__(self, multipart_threshold=64 * MiB, multipart_chunksize=16 * MiB, max_concurrency=10):
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = multipart_chunksize
        self.max_concurrency = max_concurrency


# ---------------------------------------------------------------------------------------------
# Errors


class ArtifactError(Exception):
    """Base class: ``str(exc)`` is a complete message; ``details`` go into the result."""

    def __init__(self, msg, **details):
        super(ArtifactError, self).__init__(msg)
        self.msg = msg
        self.details = details


class InvalidArgument(ArtifactError):
    """An argument is malformed (checked before any S3 call)."""


class LocalFileError(ArtifactError):
    """A local file or directory cannot be read or written."""


class SourceChangedError(ArtifactError):
    """The local file changed while it was being uploaded."""


class NoChecksumError(ArtifactError):
    """The object has no ``sha256`` metadata and the caller gave no expected hash."""


class HashMismatchError(ArtifactError):
    """Bytes do not hash to the expected SHA-256.  ``expected`` and ``actual`` are hex."""

    def __init__(self, msg, expected, actual, **details):
        super(HashMismatchError, self).__init__(msg, expected_sha256=expected, actual_sha256=actual, **details)
        self.expected = expected
        self.actual = actual


class S3Error(ArtifactError):
    """An S3 call failed.  ``exc`` is the botocore exception; ``side`` is ``destination``
    or ``source`` (for promote); ``what`` says what was being done."""

    def __init__(self, what, exc, bucket=None, key=None, version_id=None, side='destination'):
        super(S3Error, self).__init__('%s failed: %s' % (what, exc))
        self.what = what
        self.exc = exc
        self.bucket = bucket
        self.key = key
        self.version_id = version_id
        self.side = side


def _synthetic_error(code, message, operation, status):
    return ClientError({'Error': {'Code': code, 'Message': message},
                        'ResponseMetadata': {'HTTPStatusCode': status}}, operation)


def _code_and_status(exc):
    response = getattr(exc, 'response', None) or {}
    code = str(response.get('Error', {}).get('Code') or '')
    status = response.get('ResponseMetadata', {}).get('HTTPStatusCode')
    return code, status


def _call(what, func, side='destination', bucket=None, key=None, version_id=None, **kwargs):
    """Call ``func(**kwargs)``; botocore failures become :class:`S3Error`."""
    try:
        return func(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise S3Error(what, exc, bucket=bucket, key=key, version_id=version_id, side=side)


def _uri(bucket, key, version_id=None):
    uri = 's3://%s/%s' % (bucket, key)
    return '%s (version %s)' % (uri, version_id) if version_id else uri


# ---------------------------------------------------------------------------------------------
# Argument helpers (also used by the module for validation before any AWS call)


def normalize_sha256(value, name='sha256'):
    """Lower-case hex SHA-256; accepts an optional ``sha256:`` prefix.  ``None`` stays ``None``."""
    if value is None or value == '':
        return None
    text = str(value).strip().lower()
    if text.startswith('sha256:'):
        text = text[len('sha256:'):]
    if not SHA256_RE.match(text):
        raise InvalidArgument('%s must be a SHA-256 hex digest (64 characters 0-9a-f), got %r' % (name, value))
    return text


def normalize_metadata(metadata):
    """Validate user metadata: lower-case keys, ASCII string values, ``sha256`` reserved."""
    result = {}
    for raw_key, raw_value in (metadata or {}).items():
        key = str(raw_key).strip().lower()
        if key in RESERVED_METADATA:
            raise InvalidArgument('metadata.%s is set by s3_artifact itself (the SHA-256 of the file); '
                                  'pass an expected hash as the sha256 option instead' % raw_key)
        if not METADATA_KEY_RE.match(key):
            raise InvalidArgument('metadata key %r is not valid: use lower-case letters, digits, "-", "_" '
                                  'and "." (for example version, commit, build-date)' % raw_key)
        if raw_value is None:
            continue
        value = raw_value if isinstance(raw_value, str) else str(raw_value)
        try:
            value.encode('ascii')
        except UnicodeEncodeError:
            raise InvalidArgument('metadata.%s must be ASCII (S3 sends metadata as HTTP headers), got %r'
                                  % (key, value))
        if '\n' in value or '\r' in value:
            raise InvalidArgument('metadata.%s must be a single line' % key)
        result[key] = value
    if sum(len(k) + len(v) for k, v in result.items()) > 1800:
        raise InvalidArgument('metadata is too large: S3 allows 2 KiB of user metadata in total')
    return result


def normalize_tags(tags):
    """Validate object tags (at most 10, keys up to 128 and values up to 256 characters)."""
    result = {}
    for raw_key, raw_value in (tags or {}).items():
        key = str(raw_key)
        value = '' if raw_value is None else (raw_value if isinstance(raw_value, str) else str(raw_value))
        if not key or len(key) > 128 or len(value) > 256:
            raise InvalidArgument('tag %r: keys must be 1-128 and values 0-256 characters long' % key)
        result[key] = value
    if len(result) > 10:
        raise InvalidArgument('S3 allows at most 10 tags per object, got %d' % len(result))
    return result


def validate_encryption(encryption, kms_key_id):
    if encryption not in ENCRYPTION_CHOICES:
        raise InvalidArgument('encryption must be one of %s, got %r' % (', '.join(ENCRYPTION_CHOICES), encryption))
    if kms_key_id and encryption != 'aws:kms':
        raise InvalidArgument('kms_key_id is only used with encryption=aws:kms (encryption is %s)' % encryption)


def content_type_for(key):
    ext = os.path.splitext(key)[1].lower()
    if ext in CONTENT_TYPES:
        return CONTENT_TYPES[ext]
    return mimetypes.guess_type(key)[0] or 'application/octet-stream'


def object_url(client, bucket, key):
    """HTTP(S) URL of the object (path style for custom endpoints, virtual-hosted on AWS)."""
    endpoint = client.meta.endpoint_url.rstrip('/')
    style = (getattr(client.meta.config, 's3', None) or {}).get('addressing_style')
    path_key = quote(key, safe='/~')
    if style == 'path' or '.' in bucket or '://' not in endpoint:
        return '%s/%s/%s' % (endpoint, bucket, path_key)
    scheme, host = endpoint.split('://', 1)
    return '%s://%s.%s/%s' % (scheme, bucket, host, path_key)


def _etag(response):
    etag = response.get('ETag')
    if etag is None:
        etag = (response.get('CopyObjectResult') or {}).get('ETag')
    return etag.strip('"') if etag else None


def _part_size(size, chunk):
    part = max(int(chunk), MIN_PART_SIZE)
    if size > part * MAX_PARTS:
        part = -(-size // MAX_PARTS)
        part = -(-part // MiB) * MiB
    return part


def _ranges(size, part):
    return [(start, min(start + part, size)) for start in range(0, size, part)]


def _b64(digest):
    return base64.b64encode(digest).decode('ascii')


def _b64_to_hex(value):
    try:
        return binascii.hexlify(base64.b64decode(value)).decode('ascii')
    except (binascii.Error, ValueError, TypeError):
        return None


def _version(response):
    """VersionId of a response, ``None`` for unversioned buckets (``'null'``)."""
    vid = response.get('VersionId')
    return None if vid in (None, '', 'null') else vid


# ---------------------------------------------------------------------------------------------
# S3 reads


def bucket_exists(client, bucket, side='destination'):
    """False only when the bucket is known to be missing (HEAD 404); other errors say True."""
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code, status = _code_and_status(exc)
        if status == 404 or code in ('404', 'NoSuchBucket', 'NotFound'):
            return False
        return True
    except BotoCoreError as exc:
        raise S3Error('check bucket %s' % bucket, exc, bucket=bucket, side=side)
    return True


def _raise_missing_bucket(what, bucket, side):
    raise S3Error(what, _synthetic_error('NoSuchBucket', 'The specified bucket does not exist', 'HeadBucket', 404),
                  bucket=bucket, side=side)


def head(client, bucket, key, version_id=None, side='destination', checksum=False):
    """``head_object`` response, or ``None`` when the key (or version) does not exist.

    A missing bucket raises :class:`S3Error` with code ``NoSuchBucket`` (a HEAD 404 does not
    say which is missing, so the bucket is checked).  A version id that is a delete marker
    raises with code ``MethodNotAllowed``.  A malformed version id counts as missing.
    """
    kwargs = dict(Bucket=bucket, Key=key)
    if version_id:
        kwargs['VersionId'] = version_id
    if checksum:
        kwargs['ChecksumMode'] = 'ENABLED'
    what = 'read %s' % _uri(bucket, key, version_id)
    try:
        return client.head_object(**kwargs)
    except ClientError as exc:
        code, status = _code_and_status(exc)
        missing = status == 404 or code in ('404', 'NoSuchKey', 'NotFound', 'NoSuchVersion')
        bad_version = bool(version_id) and (status == 400 or code in ('400', 'InvalidArgument', 'BadRequest'))
        if missing or bad_version:
            if not bucket_exists(client, bucket, side):
                _raise_missing_bucket(what, bucket, side)
            return None
        raise S3Error(what, exc, bucket=bucket, key=key, version_id=version_id, side=side)
    except BotoCoreError as exc:
        raise S3Error(what, exc, bucket=bucket, key=key, version_id=version_id, side=side)


def head_existing(client, bucket, key, version_id=None, side='destination', what=None):
    """Like :func:`head` but a missing key or version raises ``S3Error`` (NoSuchKey/NoSuchVersion)."""
    response = head(client, bucket, key, version_id, side=side)
    if response is None:
        if version_id:
            error = _synthetic_error('NoSuchVersion', 'The specified version does not exist', 'HeadObject', 404)
        else:
            error = _synthetic_error('NoSuchKey', 'The specified key does not exist', 'HeadObject', 404)
        raise S3Error(what or 'read %s' % _uri(bucket, key, version_id), error,
                      bucket=bucket, key=key, version_id=version_id, side=side)
    return response


def stored_sha256(response):
    """The ``sha256`` user metadata of a head/get response (lower-case), else ``None``."""
    value = (response.get('Metadata') or {}).get('sha256')
    return value.strip().lower() if value else None


def resolve_expected_sha256(client, response, caller_sha256, bucket, key, version_id=None, side='destination'):
    """Decide which hash the bytes must have: ``(hex, source)``.

    * the caller's ``sha256`` wins (source ``caller``); if the object's metadata names a
      different hash the object is not the expected one and :class:`HashMismatchError` is
      raised before anything is downloaded;
    * else the object's ``sha256`` metadata (source ``metadata``);
    * else :class:`NoChecksumError`.  The server's ``ChecksumSHA256`` is deliberately not
      used as a fallback: it proves the bytes are intact, not that s3_artifact uploaded
      them (an object replaced by a plain ``put_object`` would pass).  The message shows it
      so an operator can pass it as ``sha256`` on purpose.
    """
    stored = stored_sha256(response)
    where = _uri(bucket, key, version_id or _version(response))
    if stored is not None and not SHA256_RE.match(stored):
        raise InvalidArgument('%s has sha256 metadata %r, which is not a SHA-256 hex digest: re-upload it '
                              'with s3_artifact' % (where, stored))
    if caller_sha256:
        if stored and stored != caller_sha256:
            raise HashMismatchError(
                'SHA-256 mismatch for %s: expected %s (sha256 option) but the object\'s sha256 metadata is %s; '
                'nothing was downloaded or changed' % (where, caller_sha256, stored),
                expected=caller_sha256, actual=stored, bucket=bucket, key=key)
        return caller_sha256, 'caller'
    if stored:
        return stored, 'metadata'
    hint = ''
    kwargs = dict(Bucket=bucket, Key=key, ChecksumMode='ENABLED')
    if version_id or _version(response):
        kwargs['VersionId'] = version_id or _version(response)
    try:
        with_checksum = client.head_object(**kwargs)
        checksum = with_checksum.get('ChecksumSHA256')
        if checksum and '-' not in checksum and with_checksum.get('ChecksumType', 'FULL_OBJECT') == 'FULL_OBJECT':
            hint = ' (S3 reports the full-object ChecksumSHA256 %s; pass it as sha256 only if you trust ' \
                   'whoever uploaded this object)' % _b64_to_hex(checksum)
    except (ClientError, BotoCoreError):
        pass
    raise NoChecksumError(
        '%s has no sha256 metadata, so it was not uploaded by goship.deploy.s3_artifact and cannot be '
        'verified: pass the expected sha256, or re-upload it with s3_artifact%s' % (where, hint),
        bucket=bucket, key=key)


def _summary(response):
    if response is None:
        return None
    return dict(sha256=stored_sha256(response), size=response.get('ContentLength'),
                version_id=response.get('VersionId'), etag=_etag(response))


# ---------------------------------------------------------------------------------------------
# Parallel helpers


def _run_parallel(func, jobs, concurrency):
    """Run ``func(*job)`` for every job on up to ``concurrency`` threads; results in job order.

    The first failure cancels the jobs not yet started and is re-raised.
    """
    if concurrency <= 1 or len(jobs) <= 1:
        return [func(*job) for job in jobs]
    pool = ThreadPoolExecutor(max_workers=min(concurrency, len(jobs)))
    try:
        futures = [pool.submit(func, *job) for job in jobs]
        done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future.done() and future.exception() is not None:
                for other in futures:
                    other.cancel()
                raise future.exception()
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True)


def _stream_body(body, sink, digest, expected_size=None):
    """Copy a streaming body to ``sink`` (callable or None) while hashing; returns bytes read."""
    total = 0
    for chunk in body.iter_chunks(CHUNK_SIZE):
        if sink is not None:
            sink(chunk)
        digest.update(chunk)
        total += len(chunk)
    return total


def _get_to_fd(client, bucket, key, version_id, size, fd, transfer, side='destination'):
    """Download the object into ``fd`` (from offset 0) and return ``(sha256 hex, bytes)``.

    Below the multipart threshold: one GET, written and hashed as it streams.  Above it:
    ranged GETs on ``max_concurrency`` threads write with ``pwrite`` at their offsets while
    this thread hashes the file range by range, in order, as soon as each range is complete
    (so hashing overlaps the transfer and memory stays bounded by the thread count).
    """
    what = 'download %s' % _uri(bucket, key, version_id)
    extra = {'VersionId': version_id} if version_id else {}
    digest = hashlib.sha256()
    if size < max(transfer.multipart_threshold, 1) or transfer.max_concurrency <= 1:
        response = _call(what, client.get_object, side, bucket, key, version_id, Bucket=bucket, Key=key, **extra)
        pos = [0]

        def sink(chunk):
            pwrite_all(fd, chunk, pos[0])
            pos[0] += len(chunk)
        try:
            total = _stream_body(response['Body'], sink, digest)
        except (ClientError, BotoCoreError) as exc:
            raise S3Error(what, exc, bucket=bucket, key=key, version_id=version_id, side=side)
        return digest.hexdigest(), total

    ranges = _ranges(size, _part_size(size, transfer.multipart_chunksize))

    def fetch_range(start, end):
        response = _call(what, client.get_object, side, bucket, key, version_id,
                         Bucket=bucket, Key=key, Range='bytes=%d-%d' % (start, end - 1), **extra)
        pos = start
        try:
            for chunk in response['Body'].iter_chunks(CHUNK_SIZE):
                pwrite_all(fd, chunk, pos)
                pos += len(chunk)
        except (ClientError, BotoCoreError) as exc:
            raise S3Error(what, exc, bucket=bucket, key=key, version_id=version_id, side=side)
        if pos != end:
            raise ArtifactError('%s: range %d-%d returned %d bytes instead of %d (the object changed during '
                                'the download?)' % (what, start, end - 1, pos - start, end - start))

    pool = ThreadPoolExecutor(max_workers=min(transfer.max_concurrency, len(ranges)))
    futures = [pool.submit(fetch_range, start, end) for start, end in ranges]
    try:
        for (start, end), future in zip(ranges, futures):
            future.result()
            hash_fd_range(fd, start, end, digest)
    finally:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)
    return digest.hexdigest(), size


def hash_remote(client, bucket, key, version_id=None, side='destination'):
    """Read an object (one streaming GET) and return ``(sha256 hex, size)``."""
    what = 'read back %s' % _uri(bucket, key, version_id)
    extra = {'VersionId': version_id} if version_id else {}
    response = _call(what, client.get_object, side, bucket, key, version_id, Bucket=bucket, Key=key, **extra)
    digest = hashlib.sha256()
    try:
        total = _stream_body(response['Body'], None, digest)
    except (ClientError, BotoCoreError) as exc:
        raise S3Error(what, exc, bucket=bucket, key=key, version_id=version_id, side=side)
    return digest.hexdigest(), total


# ---------------------------------------------------------------------------------------------
# Upload


def _put_args(metadata, tags, encryption, kms_key_id, content_type):
    args = dict(Metadata=metadata, ContentType=content_type)
    if encryption == 'AES256':
        args['ServerSideEncryption'] = 'AES256'
    elif encryption == 'aws:kms':
        args['ServerSideEncryption'] = 'aws:kms'
        if kms_key_id:
            args['SSEKMSKeyId'] = kms_key_id
    if tags:
        args['Tagging'] = urlencode(sorted(tags.items()))
    return args


def _stat_key(path):
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _changed_while_uploading(src):
    return SourceChangedError('%s changed while it was being uploaded (size or modification time differ from '
                              'when it was hashed): nothing was stored; run the task again once the file is '
                              'complete' % src, src=src)


def put_file(client, bucket, key, src, sha256, size, metadata, tags=None, encryption='AES256',
             kms_key_id=None, transfer=None, content_type=None, stat_key=None, side='destination'):
    """Store the local file ``src`` (whose ``sha256``/``size`` are already known) at ``key``.

    ``metadata`` must not contain ``sha256``; it is added here.  Returns the PutObject or
    CompleteMultipartUpload response (``VersionId``, ``ETag``, ...).
    """
    transfer = transfer or TransferSettings()
    meta = dict(metadata or {})
    meta['sha256'] = sha256
    args = _put_args(meta, tags, encryption, kms_key_id, content_type or content_type_for(key))
    stat_key = stat_key or _stat_key(src)
    what = 'upload %s to %s' % (src, _uri(bucket, key))
    if size < max(transfer.multipart_threshold, 1):
        with open(src, 'rb') as body:
            response = _call(what, client.put_object, side, bucket, key,
                             Bucket=bucket, Key=key, Body=body, ContentLength=size, ChecksumAlgorithm='SHA256',
                             ChecksumSHA256=_b64(binascii.unhexlify(sha256)), **args)
        if _stat_key(src) != stat_key:
            # The server checked ChecksumSHA256, so what it stored matches the metadata; but the
            # file the caller meant may be newer.  Say so rather than report success.
            raise _changed_while_uploading(src)
        return response
    return _multipart_upload(client, bucket, key, src, size, args, transfer, stat_key, what, side)


def _multipart_upload(client, bucket, key, src, size, args, transfer, stat_key, what, side):
    part_size = _part_size(size, transfer.multipart_chunksize)
    ranges = _ranges(size, part_size)
    created = _call(what, client.create_multipart_upload, side, bucket, key,
                    Bucket=bucket, Key=key, ChecksumAlgorithm='SHA256', **args)
    upload_id = created['UploadId']
    fd = None
    try:
        fd = os.open(src, os.O_RDONLY)

        def send(number, start, end):
            data = pread_exact(fd, end - start, start)
            checksum = _b64(hashlib.sha256(data).digest())
            response = _call('%s (part %d of %d)' % (what, number, len(ranges)), client.upload_part, side,
                             bucket, key, Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                             Body=data, ContentLength=len(data), ChecksumAlgorithm='SHA256',
                             ChecksumSHA256=checksum)
            return {'PartNumber': number, 'ETag': response['ETag'], 'ChecksumSHA256': checksum}

        jobs = [(number, start, end) for number, (start, end) in enumerate(ranges, 1)]
        parts = _run_parallel(send, jobs, transfer.max_concurrency)
        if _stat_key(src) != stat_key:
            raise _changed_while_uploading(src)
        return _call(what, client.complete_multipart_upload, side, bucket, key,
                     Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={'Parts': parts})
    except BaseException:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception:  # best effort: the original error is what matters
            pass
        raise
    finally:
        if fd is not None:
            os.close(fd)


def _metadata_differences(stored, wanted):
    stored = dict(stored or {})
    return sorted(k for k, v in wanted.items() if stored.get(k) != v)


def upload(client, bucket, key, src, metadata=None, tags=None, encryption='AES256', kms_key_id=None,
           expected_sha256=None, force=False, transfer=None, check_mode=False):
    """``state=present``: make ``s3://bucket/key`` hold the bytes of the local file ``src``.

    Hashes ``src``; when the current object already carries the same ``sha256`` metadata and
    size, nothing is uploaded (``changed=False``) unless ``force``.  Returns bucket, key,
    version_id, sha256, size, etag, url, server_side_encryption, changed, ``before`` (the
    previous object's summary or None) and ``warnings``.
    """
    metadata = normalize_metadata(metadata)
    tags = normalize_tags(tags)
    validate_encryption(encryption, kms_key_id)
    expected_sha256 = normalize_sha256(expected_sha256)
    if os.path.isdir(src):
        raise LocalFileError('src %s is a directory, not a file' % src, src=src)
    try:
        stat_key = _stat_key(src)
        sha256, size = hash_file(src)
    except OSError as exc:
        raise LocalFileError('cannot read src %s: %s' % (src, exc.strerror or exc), src=src)
    if expected_sha256 and expected_sha256 != sha256:
        raise HashMismatchError('SHA-256 mismatch for src %s: expected %s (sha256 option), the file hashes to %s; '
                                'nothing was uploaded' % (src, expected_sha256, sha256),
                                expected=expected_sha256, actual=sha256, src=src)

    current = head(client, bucket, key)
    result = dict(bucket=bucket, key=key, sha256=sha256, size=size, url=object_url(client, bucket, key),
                  version_id=None, etag=None, server_side_encryption=None, changed=False,
                  before=_summary(current), warnings=[])
    if current is not None and not force and stored_sha256(current) == sha256 \
            and current.get('ContentLength') == size:
        result.update(version_id=current.get('VersionId'), etag=_etag(current),
                      server_side_encryption=current.get('ServerSideEncryption'))
        differing = _metadata_differences(current.get('Metadata'), metadata)
        if differing:
            result['warnings'].append(
                '%s already holds this file (sha256 %s) but its metadata %s differ from the requested '
                'values; they were not changed (use force=true to upload again)'
                % (_uri(bucket, key), sha256, ', '.join(differing)))
        return result

    result['changed'] = True
    if check_mode:
        return result
    response = put_file(client, bucket, key, src, sha256, size, metadata, tags, encryption, kms_key_id,
                        transfer, stat_key=stat_key)
    result.update(version_id=response.get('VersionId'), etag=_etag(response),
                  server_side_encryption=response.get('ServerSideEncryption'))
    checksum = response.get('ChecksumSHA256')
    if checksum and '-' not in checksum and size < (transfer or TransferSettings()).multipart_threshold:
        if _b64_to_hex(checksum) != sha256:
            raise HashMismatchError('%s: the server stored bytes with SHA-256 %s, expected %s'
                                    % (_uri(bucket, key, response.get('VersionId')), _b64_to_hex(checksum), sha256),
                                    expected=sha256, actual=_b64_to_hex(checksum))
    return result


# ---------------------------------------------------------------------------------------------
# Fetch


def resolve_dest(dest, key):
    """An existing directory as ``dest`` means ``dest/<basename of key>``."""
    if os.path.isdir(dest):
        return os.path.join(dest, os.path.basename(key.rstrip('/')) or 'artifact')
    return dest


def fetch(client, bucket, key, dest, version_id=None, expected_sha256=None, force=False, transfer=None,
          check_mode=False, before_replace=None):
    """``state=fetched``: download the object to ``dest``, verified, atomically.

    The bytes go to a temporary file in ``dest``'s directory while being hashed; only when the
    hash equals the expected one (see :func:`resolve_expected_sha256`) is the file renamed over
    ``dest``.  On a mismatch the temporary file is removed, ``dest`` is untouched and
    :class:`HashMismatchError` names both hashes.  When ``dest`` already has the expected
    hash nothing is downloaded (``changed=False``) unless ``force``.

    ``before_replace(tmp_path)`` is called after verification and before the rename (the
    module sets owner/mode there, so ``dest`` appears with its final attributes).
    """
    transfer = transfer or TransferSettings()
    caller = normalize_sha256(expected_sha256)
    dest = resolve_dest(dest, key)
    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        raise LocalFileError('cannot write %s: directory %s does not exist' % (dest, directory), dest=dest)

    response = head_existing(client, bucket, key, version_id, what='fetch %s' % _uri(bucket, key, version_id))
    expected, source = resolve_expected_sha256(client, response, caller, bucket, key, version_id)
    size = response.get('ContentLength')
    object_version = version_id or _version(response)
    result = dict(bucket=bucket, key=key, dest=dest, version_id=response.get('VersionId') or version_id,
                  sha256=expected, sha256_source=source, size=size, etag=_etag(response),
                  url=object_url(client, bucket, key), metadata=dict(response.get('Metadata') or {}),
                  changed=False, before_sha256=None)

    if os.path.lexists(dest):
        if not os.path.isfile(dest):
            raise LocalFileError('dest %s exists and is not a regular file' % dest, dest=dest)
        try:
            result['before_sha256'] = hash_file(dest)[0]
        except OSError as exc:
            raise LocalFileError('cannot read existing dest %s: %s' % (dest, exc.strerror or exc), dest=dest)
        if result['before_sha256'] == expected and not force:
            return result

    result['changed'] = True
    if check_mode:
        return result
    try:
        handle = AtomicFile(dest, suffix='.part')
    except OSError as exc:
        raise LocalFileError('cannot create a temporary file beside %s: %s' % (dest, exc.strerror or exc), dest=dest)
    with handle:
        try:
            actual, written = _get_to_fd(client, bucket, key, object_version, size, handle.fd, transfer)
        except OSError as exc:
            raise LocalFileError('cannot write %s: %s' % (handle.path, exc.strerror or exc), dest=dest)
        if written != size:
            raise ArtifactError('download of %s returned %d bytes instead of %d; dest %s was not changed'
                                % (_uri(bucket, key, object_version), written, size, dest))
        if actual != expected:
            raise HashMismatchError(
                'SHA-256 mismatch for %s: expected %s (%s) but the downloaded bytes hash to %s; the temporary '
                'file was removed and dest %s was not changed'
                % (_uri(bucket, key, object_version), expected,
                   'sha256 option' if source == 'caller' else 'object sha256 metadata', actual, dest),
                expected=expected, actual=actual, bucket=bucket, key=key, dest=dest)
        try:
            handle.commit(before_replace)
        except OSError as exc:
            raise LocalFileError('cannot move the verified download to %s: %s' % (dest, exc.strerror or exc),
                                 dest=dest)
    return result


def download_verified(client, bucket, key, version_id, size, expected, path, transfer, side='destination'):
    """Download to ``path`` (created) and check the hash; removes ``path`` on mismatch."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        actual, written = _get_to_fd(client, bucket, key, version_id, size, fd, transfer, side=side)
    finally:
        os.close(fd)
    if actual != expected or written != size:
        os.unlink(path)
        raise HashMismatchError('SHA-256 mismatch for %s: expected %s but the bytes hash to %s; nothing was copied'
                                % (_uri(bucket, key, version_id), expected, actual),
                                expected=expected, actual=actual, bucket=bucket, key=key)
    return actual


# ---------------------------------------------------------------------------------------------
# Promote


def promote(src_client, dst_client, source, bucket, key, expected_sha256=None, method='copy', metadata=None,
            tags=None, encryption='AES256', kms_key_id=None, force=False, transfer=None, check_mode=False,
            tmpdir=None):
    """``state=promoted``: copy ``source`` (dict bucket, key, version_id) to ``s3://bucket/key``.

    ``method``: ``copy`` (server-side CopyObject with the destination client; needs both sides
    on the same endpoint and the destination credentials able to read the source) or
    ``stream`` (download with the source client to a verified temporary file, upload with
    the destination client).  Objects over 5 GiB are always streamed.

    Idempotent: when the destination already carries the expected sha256 and size nothing is
    copied.  After a copy the new destination version is read back and hashed; on a mismatch
    that version is deleted and :class:`HashMismatchError` is raised.
    """
    transfer = transfer or TransferSettings()
    metadata = normalize_metadata(metadata)
    tags = normalize_tags(tags)
    validate_encryption(encryption, kms_key_id)
    caller = normalize_sha256(expected_sha256)
    src_bucket, src_key, src_version = source['bucket'], source['key'], source.get('version_id')
    if method not in ('copy', 'stream'):
        raise InvalidArgument('method must be copy or stream, got %r' % method)

    src_head = head_existing(src_client, src_bucket, src_key, src_version, side='source',
                             what='read source %s' % _uri(src_bucket, src_key, src_version))
    src_version = src_version or _version(src_head)
    expected, sha_source = resolve_expected_sha256(src_client, src_head, caller, src_bucket, src_key, src_version,
                                                   side='source')
    size = src_head.get('ContentLength')
    current = head(dst_client, bucket, key)
    result = dict(bucket=bucket, key=key, sha256=expected, sha256_source=sha_source, size=size,
                  url=object_url(dst_client, bucket, key), version_id=None, etag=None,
                  server_side_encryption=None, method=method if size <= MAX_COPY_SIZE else 'stream',
                  source=dict(bucket=src_bucket, key=src_key, version_id=src_head.get('VersionId') or src_version),
                  changed=False, before=_summary(current), warnings=[])
    if current is not None and not force and stored_sha256(current) == expected \
            and current.get('ContentLength') == size:
        result.update(version_id=current.get('VersionId'), etag=_etag(current),
                      server_side_encryption=current.get('ServerSideEncryption'))
        return result
    if src_bucket == bucket and src_key == key and (src_version is None or src_version == (current or {}).get('VersionId')):
        raise InvalidArgument('source and destination are the same object (%s)' % _uri(bucket, key))

    result['changed'] = True
    if check_mode:
        return result

    src_meta = dict(src_head.get('Metadata') or {})
    wanted_meta = dict(src_meta)
    wanted_meta.update(metadata)
    wanted_meta['sha256'] = expected
    content_type = src_head.get('ContentType') or content_type_for(key)
    what = 'promote %s to %s' % (_uri(src_bucket, src_key, src_version), _uri(bucket, key))

    if result['method'] == 'copy':
        copy_source = dict(Bucket=src_bucket, Key=src_key)
        if src_version:
            copy_source['VersionId'] = src_version
        args = dict(Bucket=bucket, Key=key, CopySource=copy_source)
        sse = _put_args({}, None, encryption, kms_key_id, content_type)
        sse.pop('Metadata')
        sse.pop('ContentType')
        args.update(sse)
        if wanted_meta != src_meta:
            args.update(MetadataDirective='REPLACE', Metadata=wanted_meta, ContentType=content_type)
        if tags:
            args.update(TaggingDirective='REPLACE', Tagging=urlencode(sorted(tags.items())))
        response = _call(what, dst_client.copy_object, 'destination', bucket, key, **args)
    else:
        if not tags:
            tags = _source_tags(src_client, src_bucket, src_key, src_version, result['warnings'])
        work = tempfile.mkdtemp(prefix='s3_artifact_promote_', dir=tmpdir)
        try:
            path = os.path.join(work, 'artifact')
            download_verified(src_client, src_bucket, src_key, src_version, size, expected, path, transfer,
                              side='source')
            del wanted_meta['sha256']
            response = put_file(dst_client, bucket, key, path, expected, size, wanted_meta, tags, encryption,
                                kms_key_id, transfer, content_type=content_type)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    new_version = _version(response)
    result.update(version_id=response.get('VersionId'), etag=_etag(response),
                  server_side_encryption=response.get('ServerSideEncryption'))
    actual, actual_size = hash_remote(dst_client, bucket, key, new_version)
    if actual != expected or actual_size != size:
        removed = ''
        if new_version:
            try:
                dst_client.delete_object(Bucket=bucket, Key=key, VersionId=new_version)
                removed = '; the bad copy (version %s) was deleted' % new_version
            except (ClientError, BotoCoreError) as exc:
                removed = '; deleting the bad copy (version %s) failed: %s' % (new_version, exc)
        raise HashMismatchError(
            'SHA-256 mismatch after promoting to %s: expected %s (%s) but the copy hashes to %s (%d bytes)%s'
            % (_uri(bucket, key, new_version), expected,
               'sha256 option' if sha_source == 'caller' else 'source sha256 metadata', actual, actual_size, removed),
            expected=expected, actual=actual, bucket=bucket, key=key)
    result['verified'] = True
    return result


def _source_tags(client, bucket, key, version_id, warnings):
    kwargs = dict(Bucket=bucket, Key=key)
    if version_id:
        kwargs['VersionId'] = version_id
    try:
        tag_set = client.get_object_tagging(**kwargs).get('TagSet') or []
    except (ClientError, BotoCoreError) as exc:
        warnings.append('could not read the tags of %s (%s); the copy has none' % (_uri(bucket, key, version_id), exc))
        return {}
    return dict((tag['Key'], tag['Value']) for tag in tag_set)


# ---------------------------------------------------------------------------------------------
# List and delete


def _iter_key_entries(client, bucket, key):
    """Yield ``(kind, entry)`` for every version and delete marker of exactly ``key``."""
    what = 'list the versions of %s' % _uri(bucket, key)
    try:
        paginator = client.get_paginator('list_object_versions')
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            past = False
            for kind, field in (('version', 'Versions'), ('delete_marker', 'DeleteMarkers')):
                for entry in page.get(field) or []:
                    if entry.get('Key') == key:
                        yield kind, entry
                    elif entry.get('Key', '') > key:
                        past = True
            if past:
                return
    except (ClientError, BotoCoreError) as exc:
        raise S3Error(what, exc, bucket=bucket, key=key)


def _iso(value):
    return value.isoformat() if hasattr(value, 'isoformat') else value


def list_versions(client, bucket, key, transfer=None):
    """``state=listed``: the versions of ``key``, newest first, each with its sha256 and metadata.

    Delete markers are not versions and are left out (``latest_is_delete_marker`` tells
    whether the key currently reads as deleted).  A key without versions gives ``[]``.
    """
    transfer = transfer or TransferSettings()
    entries = list(_iter_key_entries(client, bucket, key))
    versions = [entry for kind, entry in entries if kind == 'version']
    latest_deleted = any(entry.get('IsLatest') for kind, entry in entries if kind == 'delete_marker')

    def describe(entry):
        vid = entry.get('VersionId')
        try:
            response = client.head_object(Bucket=bucket, Key=key, **({'VersionId': vid} if vid and vid != 'null' else {}))
        except ClientError as exc:
            code, status = _code_and_status(exc)
            if status in (404, 405) or code in ('404', 'NoSuchKey', 'NoSuchVersion', '405'):
                response = {}      # removed between list and head
            else:
                raise S3Error('read %s' % _uri(bucket, key, vid), exc, bucket=bucket, key=key, version_id=vid)
        except BotoCoreError as exc:
            raise S3Error('read %s' % _uri(bucket, key, vid), exc, bucket=bucket, key=key, version_id=vid)
        metadata = dict(response.get('Metadata') or {})
        return dict(version_id=vid, is_latest=bool(entry.get('IsLatest')), sha256=metadata.get('sha256'),
                    size=entry.get('Size'), etag=(entry.get('ETag') or '').strip('"') or None,
                    last_modified=_iso(entry.get('LastModified')), metadata=metadata)

    described = _run_parallel(describe, [(entry,) for entry in versions], min(transfer.max_concurrency, 8))
    # S3 lists the versions of a key newest first; a stable sort keeps that order for ties
    # (LastModified has a one-second resolution).
    described.sort(key=lambda item: item['last_modified'] or '', reverse=True)
    if not entries and not bucket_exists(client, bucket):
        _raise_missing_bucket('list the versions of %s' % _uri(bucket, key), bucket, 'destination')
    return dict(bucket=bucket, key=key, versions=described, latest_is_delete_marker=latest_deleted,
                url=object_url(client, bucket, key), changed=False)


def delete(client, bucket, key, version_id=None, check_mode=False):
    """``state=absent``: delete ``key`` (a delete marker in a versioned bucket) or one version.

    Idempotent: a key that does not exist (or already reads as deleted) or a version that is
    gone gives ``changed=False``.
    """
    result = dict(bucket=bucket, key=key, version_id=None, sha256=None, delete_marker=False,
                  delete_marker_version_id=None, changed=False, url=object_url(client, bucket, key))
    what = 'delete %s' % _uri(bucket, key, version_id)
    if version_id:
        found = None
        for kind, entry in _iter_key_entries(client, bucket, key):
            if entry.get('VersionId') == version_id:
                found = kind
                break
        if found is None:
            if not bucket_exists(client, bucket):
                _raise_missing_bucket(what, bucket, 'destination')
            return result
        result.update(version_id=version_id, delete_marker=found == 'delete_marker')
        if found == 'version':
            existing = head(client, bucket, key, version_id)
            result['sha256'] = stored_sha256(existing) if existing else None
        result['changed'] = True
        if not check_mode:
            _call(what, client.delete_object, 'destination', bucket, key, version_id,
                  Bucket=bucket, Key=key, VersionId=version_id)
        return result

    existing = head(client, bucket, key)
    if existing is None:
        return result
    result.update(version_id=existing.get('VersionId'), sha256=stored_sha256(existing), changed=True)
    if check_mode:
        return result
    response = _call(what, client.delete_object, 'destination', bucket, key, Bucket=bucket, Key=key)
    if response.get('DeleteMarker'):
        result.update(delete_marker=True, delete_marker_version_id=response.get('VersionId'))
    return result
