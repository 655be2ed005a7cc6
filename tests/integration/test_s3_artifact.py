"""goship.deploy.s3_artifact against the lab's real S3 server (SeaweedFS), driven through
ansible-playbook on localhost exactly as a playbook would use it.

Each test writes a small playbook into its tmp_path. The connection options come from
lab/.state/env through ``module_defaults: {group/goship.deploy.aws: ...}``. Every task
registers its result and ignores errors, and a final ``ansible.builtin.copy`` writes all
results to a JSON file, so the tests check structured results, failures included.
Objects go under a unique prefix per run and are removed afterwards, and so is the second
bucket created for promotion.
"""

import base64
import hashlib
import os
import uuid

import pytest
from botocore.exceptions import ClientError

from playbook_helpers import run_module_tasks

pytestmark = pytest.mark.lab

MiB = 1024 * 1024
RUN_ID = uuid.uuid4().hex[:12]


def sha(data):
    return hashlib.sha256(data).hexdigest()


def sha_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def bucket(lab, purge_s3):
    name = lab["S3_ARTIFACT_BUCKET"]
    yield name
    purge_s3(name, "tests/s3_artifact/%s/" % RUN_ID)


@pytest.fixture(scope="module")
def second_bucket(s3, purge_s3):
    name = "goship-promote-%s" % RUN_ID
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    purge_s3(name, "")
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def prefix(request):
    return "tests/s3_artifact/%s/%s/" % (RUN_ID, request.node.name.replace("[", "-").replace("]", ""))


@pytest.fixture(scope="module")
def sse(s3, bucket):
    """'AES256' when the lab's S3 accepts SSE-S3 headers, else 'none' (SeaweedFS may not)."""
    key = "tests/s3_artifact/%s/sse-probe" % RUN_ID
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"probe", ServerSideEncryption="AES256")
    except ClientError:
        return "none"
    return "AES256"


def play(run, lab, tmp_path, tasks, timeout=300):
    """Run s3_artifact tasks ``[(name, module args, extra task keywords), ...]`` on localhost.

    Each result is registered as ``slug(name)``, so later tasks can use earlier results
    (``"{{ put_a.version_id }}"``).  Returns ({name: result}, combined output).
    """
    connection = dict(
        region=lab["AWS_REGION"],
        endpoint_url=lab["S3_URL"],
        access_key=lab["AWS_ACCESS_KEY_ID"],
        secret_key=lab["AWS_SECRET_ACCESS_KEY"],
    )
    return run_module_tasks(run, "goship.deploy.s3_artifact", connection, tasks, tmp_path,
                            secrets=[lab["AWS_SECRET_ACCESS_KEY"]], timeout=timeout)


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


def failed(result):
    assert result.get("failed") is True, result
    assert "Traceback" not in result["msg"]
    return result["msg"]


def no_temp_files(directory, keep):
    return sorted(set(os.listdir(str(directory))) - set(keep)) == []


# ---------------------------------------------------------------------------------------------


def test_put_is_idempotent_new_content_is_a_new_version_and_old_versions_can_be_fetched(
        run, lab, s3, bucket, prefix, sse, tmp_path):
    key = prefix + "app_1.0_amd64.deb"
    a, b = os.urandom(200 * 1024), os.urandom(300 * 1024)
    (tmp_path / "a.deb").write_bytes(a)
    (tmp_path / "b.deb").write_bytes(b)
    out = tmp_path / "out"
    out.mkdir()
    common = dict(bucket=bucket, key=key, encryption=sse)
    results, _output = play(run, lab, tmp_path, [
        ("put a", dict(common, src=str(tmp_path / "a.deb"),
                       metadata={"version": "1.0", "commit": "abc123", "build-date": "2025-05-04"},
                       tags={"app": "hello-svc"}), {}),
        ("put a again", dict(common, src=str(tmp_path / "a.deb")), {}),
        ("preview b", dict(common, src=str(tmp_path / "b.deb")), {"check_mode": True, "diff": True}),
        ("put b", dict(common, src=str(tmp_path / "b.deb")), {"diff": True}),
        ("listed", dict(bucket=bucket, key=key, state="listed"), {}),
        ("fetch old", dict(bucket=bucket, key=key, state="fetched", dest=str(out / "old.deb"),
                           version_id="{{ put_a.version_id }}"), {}),
        ("fetch latest", dict(bucket=bucket, key=key, state="fetched", dest=str(out / "new.deb")), {}),
        ("fetch latest again", dict(bucket=bucket, key=key, state="fetched", dest=str(out / "new.deb")), {}),
        ("fetch old with its hash", dict(bucket=bucket, key=key, state="fetched", dest=str(out / "old.deb"),
                                         version_id="{{ put_a.version_id }}", sha256="{{ put_a.sha256 }}"), {}),
    ])
    put_a = ok(results["put a"])
    assert put_a["changed"] is True
    assert put_a["version_id"] and put_a["version_id"] != "null"
    assert put_a["sha256"] == sha(a) and put_a["size"] == len(a)
    assert put_a["bucket"] == bucket and put_a["key"] == key and put_a["etag"]
    assert put_a["url"] == "%s/%s/%s" % (lab["S3_URL"].rstrip("/"), bucket, key)

    head = s3.head_object(Bucket=bucket, Key=key, VersionId=put_a["version_id"], ChecksumMode="ENABLED")
    assert head["Metadata"]["sha256"] == sha(a)
    assert head["Metadata"]["version"] == "1.0" and head["Metadata"]["commit"] == "abc123"
    assert head["Metadata"]["build-date"] == "2025-05-04"
    assert base64.b64decode(head["ChecksumSHA256"]) == hashlib.sha256(a).digest()
    tags = s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=put_a["version_id"])["TagSet"]
    assert {"Key": "app", "Value": "hello-svc"} in tags

    again = ok(results["put a again"])
    assert again["changed"] is False and again["version_id"] == put_a["version_id"]

    preview = ok(results["preview b"])
    assert preview["changed"] is True and preview["version_id"] is None
    assert "sha256: %s" % sha(a) in preview["diff"]["before"]
    assert "sha256: %s" % sha(b) in preview["diff"]["after"]

    put_b = ok(results["put b"])
    assert put_b["changed"] is True and put_b["sha256"] == sha(b)
    assert put_b["version_id"] not in (None, "null", put_a["version_id"])

    versions = ok(results["listed"])["versions"]
    assert [v["version_id"] for v in versions] == [put_b["version_id"], put_a["version_id"]]
    assert [v["sha256"] for v in versions] == [sha(b), sha(a)]
    assert [v["size"] for v in versions] == [len(b), len(a)]
    assert versions[0]["is_latest"] is True and versions[1]["metadata"]["version"] == "1.0"
    assert all(v["last_modified"] for v in versions)

    old = ok(results["fetch old"])
    assert old["changed"] is True and old["version_id"] == put_a["version_id"] and old["sha256"] == sha(a)
    assert (out / "old.deb").read_bytes() == a
    latest = ok(results["fetch latest"])
    assert latest["changed"] is True and latest["version_id"] == put_b["version_id"]
    assert (out / "new.deb").read_bytes() == b
    assert ok(results["fetch latest again"])["changed"] is False
    pinned = ok(results["fetch old with its hash"])
    assert pinned["changed"] is False and pinned["sha256_source"] == "caller"
    assert no_temp_files(out, ["old.deb", "new.deb"])


def test_bytes_replaced_behind_our_back_fail_verification_and_leave_dest(run, lab, s3, bucket, prefix, sse, tmp_path):
    key = prefix + "app_2.0_amd64.deb"
    good, evil, raw = b"good build " * 1000, b"evil build " * 1000, b"raw upload " * 1000
    (tmp_path / "good.deb").write_bytes(good)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "app.deb"
    results, _output = play(run, lab, tmp_path, [
        ("put good", dict(bucket=bucket, key=key, src=str(tmp_path / "good.deb"), encryption=sse), {}),
        ("fetch good", dict(bucket=bucket, key=key, state="fetched", dest=str(dest), mode="0644"), {}),
    ])
    put_good = ok(results["put good"])
    assert ok(results["fetch good"])["changed"] is True and dest.read_bytes() == good
    mtime = dest.stat().st_mtime_ns

    # 1. A plain put without our metadata becomes the latest version.
    raw_version = s3.put_object(Bucket=bucket, Key=key, Body=raw)["VersionId"]
    # 2. Then someone puts other bytes and copies our metadata (so the hash is what gives it away).
    evil_version = s3.put_object(Bucket=bucket, Key=key, Body=evil, Metadata={"sha256": sha(good)})["VersionId"]

    results, _output = play(run, lab, tmp_path, [
        # dest already holds the bytes the metadata names: nothing to download, nothing at risk.
        ("fetch evil latest onto good dest", dict(bucket=bucket, key=key, state="fetched", dest=str(dest)), {}),
        ("fetch evil latest", dict(bucket=bucket, key=key, state="fetched", dest=str(out / "evil.deb")), {}),
        ("fetch evil latest forced", dict(bucket=bucket, key=key, state="fetched", dest=str(dest), force=True), {}),
        ("fetch raw", dict(bucket=bucket, key=key, state="fetched", dest=str(dest), version_id=raw_version), {}),
        ("fetch good with wrong hash", dict(bucket=bucket, key=key, state="fetched", dest=str(dest),
                                            version_id=put_good["version_id"], sha256=sha(b"something else")), {}),
        ("fetch evil with good hash", dict(bucket=bucket, key=key, state="fetched", dest=str(dest),
                                           version_id=evil_version, sha256=sha(good), force=True), {}),
        ("fetch raw with its hash", dict(bucket=bucket, key=key, state="fetched", dest=str(out / "raw.deb"),
                                         version_id=raw_version, sha256=sha(raw)), {}),
    ])
    assert ok(results["fetch evil latest onto good dest"])["changed"] is False

    msg = failed(results["fetch evil latest"])
    assert sha(good) in msg and sha(evil) in msg and "was not changed" in msg
    assert results["fetch evil latest"]["expected_sha256"] == sha(good)
    assert results["fetch evil latest"]["actual_sha256"] == sha(evil)
    assert not (out / "evil.deb").exists()

    msg = failed(results["fetch evil latest forced"])
    assert sha(good) in msg and sha(evil) in msg

    msg = failed(results["fetch raw"])
    assert "has no sha256 metadata" in msg and "pass the expected sha256" in msg

    msg = failed(results["fetch good with wrong hash"])
    assert sha(b"something else") in msg and sha(good) in msg

    msg = failed(results["fetch evil with good hash"])
    assert sha(good) in msg and sha(evil) in msg

    # dest was never touched, and no temporary file was left beside it.
    assert dest.read_bytes() == good and dest.stat().st_mtime_ns == mtime

    accepted = ok(results["fetch raw with its hash"])
    assert accepted["sha256_source"] == "caller" and (out / "raw.deb").read_bytes() == raw
    assert no_temp_files(out, ["app.deb", "raw.deb"])


def test_promote_between_buckets_verifies_and_is_idempotent(run, lab, s3, bucket, second_bucket, prefix, sse,
                                                            tmp_path):
    key = prefix + "app_3.0_amd64.deb"
    one, two = os.urandom(150 * 1024), os.urandom(150 * 1024)
    (tmp_path / "one.deb").write_bytes(one)
    (tmp_path / "two.deb").write_bytes(two)
    source = {"bucket": bucket, "key": key}
    results, _output = play(run, lab, tmp_path, [
        ("put one", dict(bucket=bucket, key=key, src=str(tmp_path / "one.deb"), encryption=sse,
                         metadata={"version": "3.0"}), {}),
        ("preview promote", dict(state="promoted", bucket=second_bucket, key=key, source=source, encryption=sse),
         {"check_mode": True}),
        ("promote", dict(state="promoted", bucket=second_bucket, key=key, source=source, encryption=sse),
         {"diff": True}),
        ("promote again", dict(state="promoted", bucket=second_bucket, key=key, source=source, encryption=sse), {}),
        ("promote streamed", dict(state="promoted", bucket=second_bucket, key=key + ".streamed", source=source,
                                  promote_method="stream", encryption=sse), {}),
        ("promote streamed again", dict(state="promoted", bucket=second_bucket, key=key + ".streamed",
                                        source=source, promote_method="stream", encryption=sse), {}),
        ("put two", dict(bucket=bucket, key=key, src=str(tmp_path / "two.deb"), encryption=sse), {}),
        ("promote old version", dict(state="promoted", bucket=second_bucket, key=key + ".old", encryption=sse,
                                     source=dict(source, version_id="{{ put_one.version_id }}")), {}),
        ("promote latest with expected hash", dict(state="promoted", bucket=second_bucket, key=key,
                                                   source=source, sha256=sha(two), encryption=sse), {}),
    ])
    put_one = ok(results["put one"])
    preview = ok(results["preview promote"])
    assert preview["changed"] is True and preview["version_id"] is None

    promoted = ok(results["promote"])
    assert promoted["changed"] is True and promoted["verified"] is True and promoted["method"] == "copy"
    assert promoted["sha256"] == sha(one) and promoted["size"] == len(one)
    assert promoted["source"]["version_id"] == put_one["version_id"]
    assert promoted["version_id"] not in (None, "null")
    got = s3.get_object(Bucket=second_bucket, Key=key, VersionId=promoted["version_id"])
    assert got["Body"].read() == one
    assert got["Metadata"]["sha256"] == sha(one) and got["Metadata"]["version"] == "3.0"

    again = ok(results["promote again"])
    assert again["changed"] is False and again["version_id"] == promoted["version_id"]

    streamed = ok(results["promote streamed"])
    assert streamed["changed"] is True and streamed["method"] == "stream" and streamed["verified"] is True
    assert s3.get_object(Bucket=second_bucket, Key=key + ".streamed")["Body"].read() == one
    assert ok(results["promote streamed again"])["changed"] is False

    old = ok(results["promote old version"])
    assert old["sha256"] == sha(one)
    assert s3.get_object(Bucket=second_bucket, Key=key + ".old")["Body"].read() == one

    latest = ok(results["promote latest with expected hash"])
    assert latest["changed"] is True and latest["sha256"] == sha(two) and latest["sha256_source"] == "caller"
    versions = s3.list_object_versions(Bucket=second_bucket, Prefix=key)["Versions"]
    assert len([v for v in versions if v["Key"] == key]) == 2


def test_200_mb_multipart_round_trip_is_verified(run, lab, s3, bucket, prefix, sse, tmp_path):
    key = prefix + "big_1.0_amd64.deb"
    src = tmp_path / "big.deb"
    digest = hashlib.sha256()
    with open(str(src), "wb") as handle:
        for _part in range(200 // 8):
            chunk = os.urandom(8 * MiB)
            digest.update(chunk)
            handle.write(chunk)
    expected = digest.hexdigest()
    dest = tmp_path / "big-downloaded.deb"
    results, _output = play(run, lab, tmp_path, [
        ("put big", dict(bucket=bucket, key=key, src=str(src), encryption=sse), {}),
        ("put big again", dict(bucket=bucket, key=key, src=str(src), encryption=sse), {}),
        ("fetch big", dict(bucket=bucket, key=key, state="fetched", dest=str(dest)), {}),
        ("fetch big again", dict(bucket=bucket, key=key, state="fetched", dest=str(dest)), {}),
    ], timeout=900)
    put = ok(results["put big"])
    assert put["changed"] is True and put["sha256"] == expected and put["size"] == 200 * MiB
    assert put["version_id"] not in (None, "null")
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["Metadata"]["sha256"] == expected and head["ContentLength"] == 200 * MiB
    # 200 MiB in 16 MiB parts: a multipart upload of 13 parts (S3-style ETag "<md5 of md5s>-13").
    assert head["ETag"].strip('"').endswith("-13"), head["ETag"]
    assert ok(results["put big again"])["changed"] is False
    fetched = ok(results["fetch big"])
    assert fetched["changed"] is True and fetched["sha256"] == expected
    assert sha_file(str(dest)) == expected
    assert ok(results["fetch big again"])["changed"] is False


def test_absent_deletes_the_key_or_one_version(run, lab, s3, bucket, prefix, sse, tmp_path):
    key = prefix + "app_4.0_amd64.deb"
    (tmp_path / "a.deb").write_bytes(b"version a")
    (tmp_path / "b.deb").write_bytes(b"version b")
    results, _output = play(run, lab, tmp_path, [
        ("put a", dict(bucket=bucket, key=key, src=str(tmp_path / "a.deb"), encryption=sse), {}),
        ("put b", dict(bucket=bucket, key=key, src=str(tmp_path / "b.deb"), encryption=sse), {}),
        ("preview delete", dict(bucket=bucket, key=key, state="absent"), {"check_mode": True, "diff": True}),
        ("listed before", dict(bucket=bucket, key=key, state="listed"), {}),
        ("delete", dict(bucket=bucket, key=key, state="absent"), {}),
        ("delete again", dict(bucket=bucket, key=key, state="absent"), {}),
        ("listed after", dict(bucket=bucket, key=key, state="listed"), {}),
        ("fetch deleted", dict(bucket=bucket, key=key, state="fetched", dest=str(tmp_path / "x.deb")), {}),
        ("delete version a", dict(bucket=bucket, key=key, state="absent", version_id="{{ put_a.version_id }}"), {}),
        ("delete version a again", dict(bucket=bucket, key=key, state="absent",
                                        version_id="{{ put_a.version_id }}"), {}),
        ("listed at the end", dict(bucket=bucket, key=key, state="listed"), {}),
    ])
    put_a, put_b = ok(results["put a"]), ok(results["put b"])
    preview = ok(results["preview delete"])
    assert preview["changed"] is True and preview["version_id"] == put_b["version_id"]
    assert len(ok(results["listed before"])["versions"]) == 2
    deleted = ok(results["delete"])
    assert deleted["changed"] is True and deleted["delete_marker"] is True and deleted["sha256"] == sha(b"version b")
    assert ok(results["delete again"])["changed"] is False
    after = ok(results["listed after"])
    assert after["latest_is_delete_marker"] is True and len(after["versions"]) == 2
    assert "does not exist" in failed(results["fetch deleted"])
    one = ok(results["delete version a"])
    assert one["changed"] is True and one["version_id"] == put_a["version_id"]
    assert ok(results["delete version a again"])["changed"] is False
    assert [v["version_id"] for v in ok(results["listed at the end"])["versions"]] == [put_b["version_id"]]


def test_default_server_side_encryption_works_or_says_how_to_turn_it_off(run, lab, bucket, prefix, sse, tmp_path):
    (tmp_path / "a.deb").write_bytes(b"encrypted?")
    results, _output = play(run, lab, tmp_path, [
        ("put with default encryption", dict(bucket=bucket, key=prefix + "sse.deb", src=str(tmp_path / "a.deb")), {}),
    ])
    result = results["put with default encryption"]
    if sse == "AES256":
        assert ok(result)["changed"] is True
    else:
        assert "encryption=none" in failed(result)


def test_errors_are_one_clear_line_without_traceback(run, lab, bucket, prefix, tmp_path):
    (tmp_path / "a.deb").write_bytes(b"x")
    missing_bucket = "goship-missing-%s" % RUN_ID
    key = prefix + "app.deb"
    dest = str(tmp_path / "out.deb")
    results, output = play(run, lab, tmp_path, [
        ("missing bucket put", dict(bucket=missing_bucket, key=key, src=str(tmp_path / "a.deb"), encryption="none"),
         {}),
        ("missing bucket fetch", dict(bucket=missing_bucket, key=key, state="fetched", dest=dest), {}),
        ("missing bucket list", dict(bucket=missing_bucket, key=key, state="listed"), {}),
        ("wrong secret key", dict(bucket=bucket, key=key, state="listed", secret_key="not-the-secret"), {}),
        ("unknown access key", dict(bucket=bucket, key=key, state="listed", access_key="AKIDNOSUCHKEY",
                                    secret_key="whatever"), {}),
        ("unreachable endpoint", dict(bucket=bucket, key=key, state="listed", endpoint_url="http://127.0.0.1:9"), {}),
        ("missing key", dict(bucket=bucket, key=prefix + "no-such.deb", state="fetched", dest=dest), {}),
    ])
    for name in ("missing bucket put", "missing bucket fetch", "missing bucket list"):
        msg = failed(results[name])
        assert "bucket %s does not exist in region %s at %s" % (missing_bucket, lab["AWS_REGION"], lab["S3_URL"]) \
            in msg, msg

    msg = failed(results["wrong secret key"])
    assert "SignatureDoesNotMatch" in msg and "secret_key" in msg, msg
    msg = failed(results["unknown access key"])
    assert results["unknown access key"]["error"]["code"] in ("InvalidAccessKeyId", "AccessDenied"), msg
    assert "check access_key" in msg or "access denied" in msg, msg

    msg = failed(results["unreachable endpoint"])
    assert "cannot connect to http://127.0.0.1:9 (2 attempts, 5 s connect timeout each)" in msg, msg

    msg = failed(results["missing key"])
    assert "s3://%s/%sno-such.deb does not exist" % (bucket, prefix) in msg, msg

    (tmp_path / "b.deb").write_bytes(b"y")
    # A version id that does not exist, of a key that does.
    results2, _output = play(run, lab, tmp_path, [
        ("put", dict(bucket=bucket, key=key, src=str(tmp_path / "b.deb"), encryption="none"), {}),
        ("missing version", dict(bucket=bucket, key=key, state="fetched", dest=dest,
                                 version_id="no-such-version-id"), {}),
    ])
    ok(results2["put"])
    msg = failed(results2["missing version"])
    assert "version no-such-version-id of s3://%s/%s does not exist" % (bucket, key) in msg, msg
    assert not os.path.exists(dest)
    assert "Traceback" not in output
