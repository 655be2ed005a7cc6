# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for the s3_artifact logic and the file helpers it uses.

S3 is moto's in-process mock (``moto.mock_aws``): pure logic checks that need no real
server.  The behaviour against a real S3 server (SeaweedFS) is covered by
tests/integration/test_s3_artifact.py.
"""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from moto import mock_aws

from ansible_collections.goship.deploy.plugins.module_utils import aws
from ansible_collections.goship.deploy.plugins.module_utils import file_ops
from ansible_collections.goship.deploy.plugins.module_utils import s3_artifact as sa

MiB = 1024 * 1024
BUCKET = 'artifacts'
KEY = 'hello-svc/1.214/hello-svc_1.214_amd64.deb'
# Small thresholds so multipart paths run on a few MiB (S3's minimum part size is 5 MiB).
SMALL = sa.TransferSettings(multipart_threshold=6 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def s3(monkeypatch):
    for name in ('AWS_PROFILE', 'AWS_DEFAULT_PROFILE', 'AWS_URL', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3'):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = aws.client('s3', dict(region='us-east-1', access_key='testing', secret_key='testing'))
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={'Status': 'Enabled'})
        yield client


@pytest.fixture
def files(tmp_path_factory):
    """Writes source files outside the test's tmp_path (which tests use as dest)."""
    directory = tmp_path_factory.mktemp('src')

    def make(name, data):
        path = directory / name
        path.write_bytes(data)
        return str(path)
    return make


def leftovers(directory, keep):
    return sorted(p for p in os.listdir(directory) if p not in keep)


# ------------------------------------------------------------------------------------------ file_ops

@pytest.mark.parametrize('size', [0, 1, 4095, 4096, 4097, 3 * 4096 + 7])
def test_hash_file_in_chunks_matches_hashlib(tmp_path, size):
    data = os.urandom(size)
    path = tmp_path / 'f'
    path.write_bytes(data)
    assert file_ops.hash_file(str(path), chunk_size=4096) == (sha(data), size)
    assert file_ops.sha256_file(str(path)) == sha(data)


def test_hash_fd_range_and_pread_pwrite_helpers(tmp_path):
    path = tmp_path / 'f'
    path.write_bytes(b'')
    fd = os.open(str(path), os.O_RDWR)
    try:
        file_ops.pwrite_all(fd, b'world', 5)
        file_ops.pwrite_all(fd, b'hello', 0)
        assert file_ops.pread_exact(fd, 10, 0) == b'helloworld'
        digest = hashlib.sha256()
        file_ops.hash_fd_range(fd, 0, 10, digest, chunk_size=3)
        assert digest.hexdigest() == sha(b'helloworld')
        with pytest.raises(EOFError):
            file_ops.hash_fd_range(fd, 5, 11, hashlib.sha256())
        with pytest.raises(EOFError):
            file_ops.pread_exact(fd, 20, 0)
    finally:
        os.close(fd)


def test_write_atomic_replaces_with_mode_and_leaves_no_temp(tmp_path):
    dest = tmp_path / 'out.bin'
    dest.write_bytes(b'old')
    file_ops.write_atomic(str(dest), b'new', 0o640)
    assert dest.read_bytes() == b'new'
    assert dest.stat().st_mode & 0o777 == 0o640
    assert leftovers(tmp_path, {'out.bin'}) == []


def test_atomic_file_discards_on_error_and_keeps_dest(tmp_path):
    dest = tmp_path / 'out.bin'
    dest.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with file_ops.AtomicFile(str(dest)) as handle:
            handle.write(b'partial')
            assert os.path.dirname(handle.path) == str(tmp_path)
            assert os.path.basename(handle.path).startswith('.out.bin.')
            raise RuntimeError('boom')
    assert dest.read_bytes() == b'old'
    assert leftovers(tmp_path, {'out.bin'}) == []


def test_atomic_file_keeps_existing_mode_or_uses_umask_default(tmp_path):
    existing = tmp_path / 'existing'
    existing.write_bytes(b'x')
    existing.chmod(0o604)
    with file_ops.AtomicFile(str(existing)) as handle:
        handle.write(b'y')
        handle.commit()
    assert existing.stat().st_mode & 0o777 == 0o604
    fresh = tmp_path / 'fresh'
    with file_ops.AtomicFile(str(fresh)) as handle:
        handle.write(b'z')
        seen = []
        handle.commit(before_replace=seen.append)
    assert seen and not os.path.exists(seen[0])
    assert fresh.stat().st_mode & 0o777 == file_ops.default_file_mode()


def test_atomic_file_before_replace_failure_keeps_dest(tmp_path):
    dest = tmp_path / 'd'
    dest.write_bytes(b'old')

    def refuse(path):
        raise OSError(13, 'Permission denied')
    with pytest.raises(OSError):
        with file_ops.AtomicFile(str(dest)) as handle:
            handle.write(b'new')
            handle.commit(before_replace=refuse)
    assert dest.read_bytes() == b'old'
    assert leftovers(tmp_path, {'d'}) == []


# ------------------------------------------------------------------------------------------ argument helpers

def test_normalize_sha256():
    digest = sha(b'x')
    assert sa.normalize_sha256(digest.upper()) == digest
    assert sa.normalize_sha256('sha256:' + digest) == digest
    assert sa.normalize_sha256(None) is None and sa.normalize_sha256('') is None
    for bad in ('abc', digest + '0', 'g' * 64):
        with pytest.raises(sa.InvalidArgument, match='SHA-256 hex digest'):
            sa.normalize_sha256(bad)


def test_normalize_metadata():
    assert sa.normalize_metadata({'Version': 1.214, 'commit': 'abc123', 'build-date': '2025-05-04', 'x': None}) == \
        {'version': '1.214', 'commit': 'abc123', 'build-date': '2025-05-04'}
    for bad, fragment in (({'sha256': 'x'}, 'set by s3_artifact itself'), ({'a b': 'x'}, 'is not valid'),
                          ({'v': 'é'}, 'must be ASCII'), ({'v': 'a\nb'}, 'single line'),
                          ({'big': 'x' * 1900}, 'too large')):
        with pytest.raises(sa.InvalidArgument, match=fragment):
            sa.normalize_metadata(bad)


def test_normalize_tags_and_encryption():
    assert sa.normalize_tags({'app': 'hello', 'n': 3}) == {'app': 'hello', 'n': '3'}
    with pytest.raises(sa.InvalidArgument, match='at most 10 tags'):
        sa.normalize_tags(dict(('k%d' % i, 'v') for i in range(11)))
    with pytest.raises(sa.InvalidArgument, match='1-128'):
        sa.normalize_tags({'k' * 129: 'v'})
    sa.validate_encryption('aws:kms', 'alias/x')
    sa.validate_encryption('aws:kms', None)
    with pytest.raises(sa.InvalidArgument, match='only used with encryption=aws:kms'):
        sa.validate_encryption('AES256', 'alias/x')
    with pytest.raises(sa.InvalidArgument, match='encryption must be one of'):
        sa.validate_encryption('DES', None)


def test_part_size_respects_s3_limits():
    assert sa._part_size(100 * MiB, 1 * MiB) == 5 * MiB
    assert sa._part_size(100 * MiB, 16 * MiB) == 16 * MiB
    huge = 200 * 1024 * MiB
    part = sa._part_size(huge, 16 * MiB)
    assert part % MiB == 0 and -(-huge // part) <= sa.MAX_PARTS
    assert sa._ranges(11, 5) == [(0, 5), (5, 10), (10, 11)]


def test_content_type_and_url(s3):
    assert sa.content_type_for('a/b.deb') == 'application/vnd.debian.binary-package'
    assert sa.content_type_for('a/b.unknownext') == 'application/octet-stream'
    assert sa.object_url(s3, BUCKET, 'a b/c.deb') == 'https://artifacts.s3.amazonaws.com/a%20b/c.deb'
    lab = aws.client('s3', dict(region='us-east-1', endpoint_url='http://172.29.77.1:8333',
                                access_key='a', secret_key='b'))
    assert sa.object_url(lab, BUCKET, KEY) == 'http://172.29.77.1:8333/artifacts/' + KEY


# ------------------------------------------------------------------------------------------ upload

def test_upload_stores_sha256_metadata_and_checksum_and_returns_version(s3, files):
    data = b'package bytes' * 100
    src = files('a.deb', data)
    result = sa.upload(s3, BUCKET, KEY, src, metadata={'version': '1.214', 'commit': 'abc', 'build-date': '2025'},
                       tags={'app': 'hello-svc'}, transfer=SMALL)
    assert result['changed'] is True
    assert result['sha256'] == sha(data) and result['size'] == len(data)
    assert result['version_id'] and result['etag']
    assert result['url'].endswith('/' + KEY)
    head = s3.head_object(Bucket=BUCKET, Key=KEY, ChecksumMode='ENABLED')
    assert head['VersionId'] == result['version_id']
    assert head['Metadata'] == {'sha256': sha(data), 'version': '1.214', 'commit': 'abc', 'build-date': '2025'}
    assert base64.b64decode(head['ChecksumSHA256']) == hashlib.sha256(data).digest()
    assert head['ServerSideEncryption'] == 'AES256'
    assert head['ContentType'] == 'application/vnd.debian.binary-package'
    tags = s3.get_object_tagging(Bucket=BUCKET, Key=KEY)['TagSet']
    assert tags == [{'Key': 'app', 'Value': 'hello-svc'}]


def test_upload_is_idempotent_and_new_content_makes_a_new_version(s3, files):
    src = files('a.deb', b'one')
    first = sa.upload(s3, BUCKET, KEY, src)
    again = sa.upload(s3, BUCKET, KEY, src)
    assert again['changed'] is False
    assert again['version_id'] == first['version_id'] and again['sha256'] == first['sha256']
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)['Versions']) == 1

    forced = sa.upload(s3, BUCKET, KEY, src, force=True)
    assert forced['changed'] is True and forced['version_id'] != first['version_id']

    src2 = files('b.deb', b'two')
    second = sa.upload(s3, BUCKET, KEY, src2)
    assert second['changed'] is True
    assert second['version_id'] not in (first['version_id'], forced['version_id'])
    assert second['before']['sha256'] == sha(b'one')


def test_upload_warns_about_metadata_it_does_not_change(s3, files):
    src = files('a.deb', b'one')
    sa.upload(s3, BUCKET, KEY, src, metadata={'version': '1'})
    again = sa.upload(s3, BUCKET, KEY, src, metadata={'version': '2'})
    assert again['changed'] is False
    assert 'metadata version differ' in again['warnings'][0] and 'force=true' in again['warnings'][0]


def test_upload_check_mode_uploads_nothing(s3, files):
    src = files('a.deb', b'one')
    result = sa.upload(s3, BUCKET, KEY, src, check_mode=True)
    assert result['changed'] is True and result['version_id'] is None and result['sha256'] == sha(b'one')
    assert 'Versions' not in s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)
    sa.upload(s3, BUCKET, KEY, src)
    assert sa.upload(s3, BUCKET, KEY, src, check_mode=True)['changed'] is False


def test_upload_refuses_a_src_with_another_hash(s3, files):
    src = files('a.deb', b'one')
    with pytest.raises(sa.HashMismatchError) as info:
        sa.upload(s3, BUCKET, KEY, src, expected_sha256=sha(b'two'))
    assert sha(b'one') in str(info.value) and sha(b'two') in str(info.value)
    assert 'nothing was uploaded' in str(info.value)
    assert 'Versions' not in s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)


def test_upload_missing_src_and_missing_bucket(s3, tmp_path, files):
    with pytest.raises(sa.LocalFileError, match='cannot read src'):
        sa.upload(s3, BUCKET, KEY, str(tmp_path / 'missing.deb'))
    with pytest.raises(sa.LocalFileError, match='is a directory'):
        sa.upload(s3, BUCKET, KEY, str(tmp_path))
    with pytest.raises(sa.S3Error) as info:
        sa.upload(s3, 'no-such-bucket', KEY, files('a.deb', b'x'))
    assert aws.error_code(info.value.exc) == 'NoSuchBucket'


@pytest.mark.parametrize('encryption, kms, expected', [('none', None, None), ('aws:kms', 'alias/goship', 'aws:kms')])
def test_upload_encryption_options(s3, files, encryption, kms, expected):
    result = sa.upload(s3, BUCKET, KEY, files('a.deb', b'x'), encryption=encryption, kms_key_id=kms)
    head = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert head.get('ServerSideEncryption') == expected == result['server_side_encryption']
    if kms:
        assert 'goship' in head['SSEKMSKeyId']


def test_multipart_upload_records_the_full_object_hash(s3, files):
    data = os.urandom(13 * MiB + 123)
    src = files('big.deb', data)
    sent = []
    s3.meta.events.register('before-send.s3.UploadPart',
                            lambda request, **kwargs: sent.append(request.headers['x-amz-checksum-sha256']))
    result = sa.upload(s3, BUCKET, KEY, src, transfer=SMALL)
    assert result['etag'].endswith('-3')          # 5 + 5 + 3 MiB parts
    assert result['version_id']
    head = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert head['Metadata']['sha256'] == sha(data) and head['ContentLength'] == len(data)
    # Every part went with its own SHA-256 checksum (the server checks it).
    parts = [data[:5 * MiB], data[5 * MiB:10 * MiB], data[10 * MiB:]]
    assert sorted(base64.b64decode(value) for value in sent) == sorted(hashlib.sha256(p).digest() for p in parts)
    # And the second identical upload is skipped by the metadata hash, not the ETag.
    assert sa.upload(s3, BUCKET, KEY, src, transfer=SMALL)['changed'] is False


def test_multipart_upload_aborts_when_src_changes_while_uploading(s3, files, monkeypatch):
    src = files('big.deb', os.urandom(11 * MiB))
    real = sa._stat_key
    calls = []

    def stat_key(path):
        calls.append(path)
        key = real(path)
        return key if len(calls) == 1 else key[:1] + (key[1] + 1,) + key[2:]
    monkeypatch.setattr(sa, '_stat_key', stat_key)
    with pytest.raises(sa.SourceChangedError, match='changed while it was being uploaded'):
        sa.upload(s3, BUCKET, KEY, src, transfer=SMALL)
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get('Uploads')
    assert 'Versions' not in s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)


def test_multipart_upload_aborts_when_a_part_fails(s3, files, monkeypatch):
    src = files('big.deb', os.urandom(11 * MiB))
    real = s3.upload_part

    def flaky(**kwargs):
        if kwargs['PartNumber'] == 2:
            raise sa.ClientError({'Error': {'Code': 'InternalError', 'Message': 'disk'},
                                  'ResponseMetadata': {'HTTPStatusCode': 500}}, 'UploadPart')
        return real(**kwargs)
    monkeypatch.setattr(s3, 'upload_part', flaky)
    with pytest.raises(sa.S3Error) as info:
        sa.upload(s3, BUCKET, KEY, src, transfer=SMALL)
    assert 'part 2 of 3' in info.value.what
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get('Uploads')


# ------------------------------------------------------------------------------------------ fetch

@pytest.fixture
def two_versions(s3, files):
    old = sa.upload(s3, BUCKET, KEY, files('old.deb', b'old build'))
    new = sa.upload(s3, BUCKET, KEY, files('new.deb', b'new build'))
    return old, new


def test_fetch_latest_and_an_old_version(s3, tmp_path, two_versions):
    old, new = two_versions
    dest = tmp_path / 'out' / 'app.deb'
    dest.parent.mkdir()
    latest = sa.fetch(s3, BUCKET, KEY, str(dest))
    assert latest['changed'] is True and dest.read_bytes() == b'new build'
    assert latest['version_id'] == new['version_id'] and latest['sha256_source'] == 'metadata'
    previous = sa.fetch(s3, BUCKET, KEY, str(dest), version_id=old['version_id'])
    assert previous['changed'] is True and dest.read_bytes() == b'old build'
    assert previous['sha256'] == sha(b'old build') and previous['before_sha256'] == sha(b'new build')
    assert leftovers(dest.parent, {'app.deb'}) == []


def test_fetch_skips_when_dest_already_has_the_hash(s3, tmp_path, two_versions):
    dest = tmp_path / 'app.deb'
    dest.write_bytes(b'new build')
    os.utime(str(dest), (1000000000, 1000000000))
    inode = dest.stat().st_ino
    result = sa.fetch(s3, BUCKET, KEY, str(dest))
    assert result['changed'] is False
    assert dest.stat().st_ino == inode and dest.stat().st_mtime == 1000000000
    assert sa.fetch(s3, BUCKET, KEY, str(dest), force=True)['changed'] is True
    assert dest.stat().st_ino != inode


def test_fetch_into_a_directory_and_check_mode(s3, tmp_path, two_versions):
    result = sa.fetch(s3, BUCKET, KEY, str(tmp_path), check_mode=True)
    assert result['changed'] is True and result['dest'] == str(tmp_path / os.path.basename(KEY))
    assert os.listdir(str(tmp_path)) == []
    sa.fetch(s3, BUCKET, KEY, str(tmp_path))
    assert (tmp_path / os.path.basename(KEY)).read_bytes() == b'new build'


def test_fetch_with_a_wrong_expected_hash_downloads_nothing(s3, tmp_path, two_versions):
    dest = tmp_path / 'app.deb'
    dest.write_bytes(b'what was there')
    wrong = sha(b'something else')
    with pytest.raises(sa.HashMismatchError) as info:
        sa.fetch(s3, BUCKET, KEY, str(dest), expected_sha256=wrong)
    assert info.value.expected == wrong and info.value.actual == sha(b'new build')
    assert wrong in str(info.value) and sha(b'new build') in str(info.value)
    assert dest.read_bytes() == b'what was there'
    assert leftovers(tmp_path, {'app.deb'}) == []


def test_fetch_detects_bytes_replaced_behind_our_back(s3, tmp_path, two_versions):
    """Someone puts other bytes and copies our metadata: the download hash gives it away."""
    dest = tmp_path / 'app.deb'
    dest.write_bytes(b'new build')
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b'evil build', Metadata={'sha256': sha(b'new build')})
    with pytest.raises(sa.HashMismatchError) as info:
        sa.fetch(s3, BUCKET, KEY, str(tmp_path / 'other.deb'))
    message = str(info.value)
    assert sha(b'new build') in message and sha(b'evil build') in message
    assert 'temporary file was removed' in message
    assert not (tmp_path / 'other.deb').exists()
    assert leftovers(tmp_path, {'app.deb'}) == []
    # dest already holding the expected bytes is not even touched.
    assert sa.fetch(s3, BUCKET, KEY, str(dest))['changed'] is False


def test_fetch_refuses_objects_without_our_metadata(s3, tmp_path):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b'raw', ChecksumAlgorithm='SHA256')
    dest = tmp_path / 'app.deb'
    with pytest.raises(sa.NoChecksumError) as info:
        sa.fetch(s3, BUCKET, KEY, str(dest))
    message = str(info.value)
    assert 'has no sha256 metadata' in message and 'pass the expected sha256' in message
    # The server's own checksum is offered as a hint, never used silently.
    assert sha(b'raw') in message
    assert not dest.exists()
    ok = sa.fetch(s3, BUCKET, KEY, str(dest), expected_sha256=sha(b'raw'))
    assert ok['changed'] is True and ok['sha256_source'] == 'caller' and dest.read_bytes() == b'raw'


def test_fetch_missing_bucket_key_version_and_directory(s3, tmp_path, two_versions):
    def code(**kwargs):
        with pytest.raises(sa.S3Error) as info:
            sa.fetch(s3, kwargs.pop('bucket', BUCKET), kwargs.pop('key', KEY), str(tmp_path / 'x'), **kwargs)
        return aws.error_code(info.value.exc)
    assert code(bucket='no-such-bucket') == 'NoSuchBucket'
    assert code(key='no/such/key.deb') == 'NoSuchKey'
    assert code(version_id='no-such-version') == 'NoSuchVersion'
    with pytest.raises(sa.LocalFileError, match='does not exist'):
        sa.fetch(s3, BUCKET, KEY, str(tmp_path / 'missing-dir' / 'x'))
    assert os.listdir(str(tmp_path)) == []


def test_fetch_ranged_parallel_download_and_before_replace(s3, tmp_path, files):
    data = os.urandom(17 * MiB + 5)
    sa.upload(s3, BUCKET, KEY, files('big.deb', data), transfer=SMALL)
    dest = tmp_path / 'got.deb'
    seen = []

    def before_replace(path):
        seen.append(path)
        assert open(path, 'rb').read(16) == data[:16]
    result = sa.fetch(s3, BUCKET, KEY, str(dest), transfer=SMALL, before_replace=before_replace)
    assert result['changed'] is True and dest.read_bytes() == data
    assert os.path.dirname(seen[0]) == str(tmp_path) and seen[0].endswith('.part')


def test_fetch_ranged_download_mismatch_keeps_dest(s3, tmp_path, files):
    data = os.urandom(12 * MiB)
    src = files('big.deb', data)
    sa.upload(s3, BUCKET, KEY, src, transfer=SMALL)
    # Replace the bytes but keep our metadata (multipart, so the ranged path runs).
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=os.urandom(12 * MiB), Metadata={'sha256': sha(data)})
    dest = tmp_path / 'app.deb'
    dest.write_bytes(b'previous release')
    with pytest.raises(sa.HashMismatchError):
        sa.fetch(s3, BUCKET, KEY, str(dest), transfer=SMALL)
    assert dest.read_bytes() == b'previous release'
    assert leftovers(tmp_path, {'app.deb'}) == []


# ------------------------------------------------------------------------------------------ list / delete

def test_list_versions_newest_first_with_hashes(s3, two_versions):
    old, new = two_versions
    result = sa.list_versions(s3, BUCKET, KEY)
    assert [v['version_id'] for v in result['versions']] == [new['version_id'], old['version_id']]
    assert [v['sha256'] for v in result['versions']] == [sha(b'new build'), sha(b'old build')]
    assert result['versions'][0]['is_latest'] is True and result['versions'][1]['is_latest'] is False
    assert result['versions'][0]['size'] == len(b'new build')
    assert result['versions'][0]['metadata']['sha256'] == sha(b'new build')
    assert 'T' in result['versions'][0]['last_modified']
    assert result['latest_is_delete_marker'] is False


def test_list_versions_only_lists_the_exact_key(s3, files, two_versions):
    sa.upload(s3, BUCKET, KEY + '.sig', files('sig', b'signature'))
    assert len(sa.list_versions(s3, BUCKET, KEY)['versions']) == 2
    assert sa.list_versions(s3, BUCKET, 'nothing/here')['versions'] == []
    with pytest.raises(sa.S3Error) as info:
        sa.list_versions(s3, 'no-such-bucket', KEY)
    assert aws.error_code(info.value.exc) == 'NoSuchBucket'


def test_delete_latest_then_a_version_idempotently(s3, two_versions):
    old, new = two_versions
    preview = sa.delete(s3, BUCKET, KEY, check_mode=True)
    assert preview['changed'] is True and preview['version_id'] == new['version_id']
    assert s3.head_object(Bucket=BUCKET, Key=KEY)['VersionId'] == new['version_id']

    gone = sa.delete(s3, BUCKET, KEY)
    assert gone['changed'] is True and gone['delete_marker'] is True and gone['delete_marker_version_id']
    assert gone['sha256'] == sha(b'new build')
    assert sa.delete(s3, BUCKET, KEY)['changed'] is False
    assert sa.list_versions(s3, BUCKET, KEY)['latest_is_delete_marker'] is True

    one = sa.delete(s3, BUCKET, KEY, version_id=old['version_id'])
    assert one['changed'] is True and one['sha256'] == sha(b'old build')
    assert sa.delete(s3, BUCKET, KEY, version_id=old['version_id'])['changed'] is False
    # Removing the delete marker restores the newest version.
    marker = sa.delete(s3, BUCKET, KEY, version_id=gone['delete_marker_version_id'])
    assert marker['changed'] is True and marker['delete_marker'] is True
    assert s3.head_object(Bucket=BUCKET, Key=KEY)['VersionId'] == new['version_id']
    with pytest.raises(sa.S3Error):
        sa.delete(s3, 'no-such-bucket', KEY, version_id='x')


# ------------------------------------------------------------------------------------------ promote

@pytest.fixture
def prod(s3):
    s3.create_bucket(Bucket='production')
    s3.put_bucket_versioning(Bucket='production', VersioningConfiguration={'Status': 'Enabled'})
    return 'production'


@pytest.mark.parametrize('method', ['copy', 'stream'])
def test_promote_copies_verifies_and_is_idempotent(s3, prod, two_versions, method):
    old, new = two_versions
    source = dict(bucket=BUCKET, key=KEY, version_id=old['version_id'])
    preview = sa.promote(s3, s3, source, prod, KEY, method=method, check_mode=True)
    assert preview['changed'] is True and preview['version_id'] is None
    assert 'Versions' not in s3.list_object_versions(Bucket=prod)

    result = sa.promote(s3, s3, source, prod, KEY, method=method, tags={'env': 'production'}, transfer=SMALL)
    assert result['changed'] is True and result['verified'] is True and result['method'] == method
    assert result['sha256'] == sha(b'old build') and result['version_id']
    assert result['source'] == dict(bucket=BUCKET, key=KEY, version_id=old['version_id'])
    got = s3.get_object(Bucket=prod, Key=KEY)
    assert got['Body'].read() == b'old build'
    assert got['Metadata']['sha256'] == sha(b'old build')
    assert s3.get_object_tagging(Bucket=prod, Key=KEY)['TagSet'] == [{'Key': 'env', 'Value': 'production'}]

    again = sa.promote(s3, s3, source, prod, KEY, method=method)
    assert again['changed'] is False and again['version_id'] == result['version_id']
    assert len(s3.list_object_versions(Bucket=prod)['Versions']) == 1


def test_promote_stream_carries_source_tags_and_metadata(s3, prod, files):
    sa.upload(s3, BUCKET, KEY, files('a.deb', b'tagged'), metadata={'version': '1.214'}, tags={'app': 'hello'})
    result = sa.promote(s3, s3, dict(bucket=BUCKET, key=KEY), prod, 'promoted/' + KEY, method='stream',
                        metadata={'commit': 'abc'})
    assert result['warnings'] == []
    head = s3.head_object(Bucket=prod, Key='promoted/' + KEY)
    assert head['Metadata'] == {'sha256': sha(b'tagged'), 'version': '1.214', 'commit': 'abc'}
    assert s3.get_object_tagging(Bucket=prod, Key='promoted/' + KEY)['TagSet'] == [{'Key': 'app', 'Value': 'hello'}]


def test_promote_of_an_unmarked_object_needs_and_records_the_hash(s3, prod):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b'vendor package')
    with pytest.raises(sa.NoChecksumError):
        sa.promote(s3, s3, dict(bucket=BUCKET, key=KEY), prod, KEY)
    result = sa.promote(s3, s3, dict(bucket=BUCKET, key=KEY), prod, KEY, expected_sha256=sha(b'vendor package'))
    assert result['sha256_source'] == 'caller'
    assert s3.head_object(Bucket=prod, Key=KEY)['Metadata']['sha256'] == sha(b'vendor package')
    with pytest.raises(sa.HashMismatchError):
        sa.promote(s3, s3, dict(bucket=BUCKET, key=KEY), prod, 'other.deb', expected_sha256=sha(b'nope'),
                   method='stream')
    assert 'Versions' not in s3.list_object_versions(Bucket=prod, Prefix='other.deb')


def test_promote_deletes_a_copy_that_fails_verification(s3, prod, two_versions, monkeypatch):
    monkeypatch.setattr(sa, 'hash_remote', lambda *args, **kwargs: (sha(b'corrupt'), 9))
    with pytest.raises(sa.HashMismatchError) as info:
        sa.promote(s3, s3, dict(bucket=BUCKET, key=KEY), prod, KEY)
    assert 'the bad copy (version' in str(info.value) and 'was deleted' in str(info.value)
    assert sha(b'corrupt') in str(info.value) and sha(b'new build') in str(info.value)
    assert 'Versions' not in s3.list_object_versions(Bucket=prod)


def test_promote_errors_name_the_side(s3, prod, two_versions):
    with pytest.raises(sa.S3Error) as info:
        sa.promote(s3, s3, dict(bucket='no-such-bucket', key=KEY), prod, KEY)
    assert info.value.side == 'source' and aws.error_code(info.value.exc) == 'NoSuchBucket'
    with pytest.raises(sa.S3Error) as info:
        sa.promote(s3, s3, dict(bucket=BUCKET, key=KEY), 'no-such-target', KEY)
    assert info.value.side == 'destination' and aws.error_code(info.value.exc) == 'NoSuchBucket'
    with pytest.raises(sa.S3Error) as info:
        sa.promote(s3, s3, dict(bucket=BUCKET, key=KEY, version_id='gone'), prod, KEY)
    assert aws.error_code(info.value.exc) == 'NoSuchVersion'


def test_promote_an_old_version_onto_its_own_key_restores_it(s3, two_versions):
    old, new = two_versions
    result = sa.promote(s3, s3, dict(bucket=BUCKET, key=KEY, version_id=old['version_id']), BUCKET, KEY)
    assert result['changed'] is True
    assert s3.get_object(Bucket=BUCKET, Key=KEY)['Body'].read() == b'old build'
    with pytest.raises(sa.InvalidArgument, match='same object'):
        sa.promote(s3, s3, dict(bucket=BUCKET, key=KEY), BUCKET, KEY, force=True)


def test_s3_errors_keep_the_context_for_messages(s3):
    with pytest.raises(sa.S3Error) as info:
        sa.head_existing(s3, BUCKET, 'missing.deb')
    error = info.value
    assert (error.bucket, error.key, error.side) == (BUCKET, 'missing.deb', 'destination')
    msg = aws.describe_error(error.exc, error.what, bucket=error.bucket, key=error.key,
                             params=dict(region='us-east-1', endpoint_url='http://172.29.77.1:8333'))
    assert msg == ('read s3://artifacts/missing.deb failed: s3://artifacts/missing.deb does not exist in region '
                   'us-east-1 at http://172.29.77.1:8333: check the key (<app>/<version>/...) and that the '
                   'artifact was uploaded (NoSuchKey, HTTP 404)')
