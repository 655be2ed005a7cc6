"""Throughput of goship.deploy's s3_artifact transfers against plain boto3, in the same run.

    .venv/bin/python bench/s3_artifact_throughput.py [--size-mb 200] [--rounds 3]

Reads the S3 endpoint, keys, region and bucket from lab/.state/env (``make lab-up``) and talks
to that endpoint only (it must be on loopback or the lab gateway). It writes one random file
of --size-mb to a temporary directory, then for --rounds rounds, interleaved (the order of
the two contenders alternates per round), times:

* put: boto3 ``upload_file`` vs ``s3_artifact.upload`` (which also hashes the file, stores
  the SHA-256 as metadata and sends a SHA-256 checksum per part; ``force`` so every round
  really uploads);
* get: boto3 ``download_file`` vs ``s3_artifact.fetch`` (temporary file, SHA-256 verified,
  rename; ``force`` so every round really downloads).

Both use the same boto3 client (made by goship's client factory) and the same
``TransferConfig`` (multipart threshold, part size, threads), so the difference is the
transfer code. No server-side encryption on either side. It prints each round and the
medians, and the ratio ours/boto3 of the median throughputs (goal >= 0.8). No asserts: it
is a measurement. Everything it uploads (all versions under one bench/ prefix) is deleted
at the end. Bounded: at most 10 rounds, 2048 MiB, and --max-seconds of wall time.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
LAB_ENV = REPO / "lab" / ".state" / "env"
MiB = 1024 * 1024

sys.path.insert(0, str(REPO / ".collections"))

from boto3.s3.transfer import TransferConfig  # noqa: E402

from ansible_collections.goship.deploy.plugins.module_utils import aws  # noqa: E402
from ansible_collections.goship.deploy.plugins.module_utils import file_ops  # noqa: E402
from ansible_collections.goship.deploy.plugins.module_utils import s3_artifact  # noqa: E402


def read_env(path):
    """KEY=VALUE lines, as written by the lab (same format as tests/conftest.py reads)."""
    env = {}
    for line in Path(path).read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key] = value
    return env


def check_endpoint(url, env):
    """Only loopback or the lab's own gateway: the benchmark must not leave this machine."""
    host = urlsplit(url).hostname or ""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        if host == "localhost":
            return
    if host and host == env.get("LAB_GATEWAY"):
        return
    sys.exit("refusing to benchmark %s: not loopback and not the lab gateway (LAB_GATEWAY=%s)"
             % (url, env.get("LAB_GATEWAY")))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--env", default=str(LAB_ENV), help="lab state file (default: lab/.state/env)")
    parser.add_argument("--size-mb", type=int, default=200, help="object size in MiB (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--threshold-mb", type=int, default=64, help="multipart threshold (default 64)")
    parser.add_argument("--chunk-mb", type=int, default=16, help="part size (default 16)")
    parser.add_argument("--concurrency", type=int, default=10, help="threads per transfer (default 10)")
    parser.add_argument("--max-seconds", type=int, default=900, help="stop starting rounds after this (default 900)")
    args = parser.parse_args(argv)
    if not 1 <= args.size_mb <= 2048:
        parser.error("--size-mb must be 1..2048")
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds must be 1..10")
    if not 1 <= args.concurrency <= 64:
        parser.error("--concurrency must be 1..64")
    return args


def write_random_file(path, size):
    digest = hashlib.sha256()
    remaining = size
    with open(path, "wb") as handle:
        while remaining:
            chunk = os.urandom(min(8 * MiB, remaining))
            digest.update(chunk)
            handle.write(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def timed(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def purge(client, bucket, prefix):
    paginator = client.get_paginator("list_object_versions")
    for number, page in enumerate(paginator.paginate(Bucket=bucket, Prefix=prefix)):
        if number >= 100:
            break
        for entry in (page.get("Versions") or []) + (page.get("DeleteMarkers") or []):
            client.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not Path(args.env).exists():
        sys.exit("%s missing: the lab is down (run `make lab-up`)" % args.env)
    env = read_env(args.env)
    endpoint = env["S3_URL"]
    check_endpoint(endpoint, env)
    bucket = env["S3_ARTIFACT_BUCKET"]
    params = dict(region=env.get("AWS_REGION"), endpoint_url=endpoint, access_key=env["AWS_ACCESS_KEY_ID"],
                  secret_key=env["AWS_SECRET_ACCESS_KEY"], retries=3)
    client = aws.client("s3", params, max_pool_connections=args.concurrency + 2)
    config = TransferConfig(multipart_threshold=args.threshold_mb * MiB, multipart_chunksize=args.chunk_mb * MiB,
                            max_concurrency=args.concurrency, use_threads=True)
    size = args.size_mb * MiB
    prefix = "bench/s3_artifact/%s/" % uuid.uuid4().hex[:12]
    boto3_key, ours_key = prefix + "boto3.bin", prefix + "s3_artifact.bin"

    print("s3_artifact vs plain boto3: %d MiB object, %s, bucket %s" % (args.size_mb, endpoint, bucket))
    print("same client, same TransferConfig: threshold %d MiB, parts %d MiB, %d threads; no SSE; %d rounds"
          % (args.threshold_mb, args.chunk_mb, args.concurrency, args.rounds))
    rows = []
    deadline = time.monotonic() + args.max_seconds
    with tempfile.TemporaryDirectory(prefix="s3_artifact_bench_") as work:
        src = os.path.join(work, "artifact.bin")
        expected = write_random_file(src, size)
        hash_seconds = timed(lambda: file_ops.hash_file(src))
        print("local SHA-256 of the file: %.2f s (%.0f MiB/s), part of every s3_artifact put and get"
              % (hash_seconds, args.size_mb / hash_seconds))

        def boto3_put():
            client.upload_file(src, bucket, boto3_key, Config=config)

        def ours_put():
            result = s3_artifact.upload(client, bucket, ours_key, src, encryption="none", force=True, transfer=config)
            assert result["sha256"] == expected

        def boto3_get():
            client.download_file(bucket, boto3_key, os.path.join(work, "boto3.out"), Config=config)

        def ours_get():
            result = s3_artifact.fetch(client, bucket, ours_key, os.path.join(work, "ours.out"), force=True,
                                       transfer=config)
            assert result["sha256"] == expected and result["changed"]

        contenders = {"put": [("boto3", boto3_put), ("s3_artifact", ours_put)],
                      "get": [("boto3", boto3_get), ("s3_artifact", ours_get)]}
        try:
            for number in range(1, args.rounds + 1):
                if time.monotonic() > deadline:
                    print("time budget of %d s used up: stopping after %d rounds" % (args.max_seconds, number - 1))
                    break
                for op in ("put", "get"):
                    order = contenders[op] if number % 2 else list(reversed(contenders[op]))
                    seconds = dict((name, timed(func)) for name, func in order)
                    rows.append((number, op, seconds["boto3"], seconds["s3_artifact"]))
                # The plain download is checked too (outside the timing).
                if file_ops.hash_file(os.path.join(work, "boto3.out"))[0] != expected:
                    print("WARNING: boto3 download_file returned different bytes in round %d" % number)
        finally:
            purge(client, bucket, prefix)

    if not rows:
        print("no complete round")
        return 0
    print()
    print("%-5s %-4s %14s %18s %7s" % ("round", "op", "boto3 MiB/s", "s3_artifact MiB/s", "ratio"))
    for number, op, plain, ours in rows:
        print("%-5d %-4s %14.1f %18.1f %7.2f" % (number, op, args.size_mb / plain, args.size_mb / ours, plain / ours))
    print()
    for op in ("put", "get"):
        plain = statistics.median(args.size_mb / p for _n, o, p, _s in rows if o == op)
        ours = statistics.median(args.size_mb / s for _n, o, _p, s in rows if o == op)
        ratio = ours / plain
        print("median %s: boto3 %.1f MiB/s, s3_artifact %.1f MiB/s, ratio %.2f (goal >= 0.8: %s)"
              % (op, plain, ours, ratio, "met" if ratio >= 0.8 else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
