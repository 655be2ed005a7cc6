"""Shared fixtures: the repository root and the running lab's state (lab/.state/env)."""

import os
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parent.parent
LAB_ENV = REPO / "lab" / ".state" / "env"


def read_lab_env():
    env = {}
    for line in LAB_ENV.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key] = value
    return env


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="session")
def lab():
    """The lab's endpoints and credentials. Integration tests need the lab: fail, don't skip."""
    if not LAB_ENV.exists():
        pytest.fail(f"{LAB_ENV} missing: the lab is down (run `make lab-up`)")
    return read_lab_env()


@pytest.fixture(scope="session")
def s3(lab):
    """A boto3 S3 client for the lab's S3 server (SeaweedFS)."""
    return boto3.client(
        "s3",
        endpoint_url=lab["S3_URL"],
        region_name=lab["AWS_REGION"],
        aws_access_key_id=lab["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=lab["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
    )


@pytest.fixture(scope="session")
def purge_s3(s3):
    """purge_s3(bucket, prefix): delete every version and delete marker under prefix (at most 100 pages)."""

    def _purge(bucket, prefix):
        paginator = s3.get_paginator("list_object_versions")
        for page_number, page in enumerate(paginator.paginate(Bucket=bucket, Prefix=prefix)):
            if page_number >= 100:
                break
            for entry in (page.get("Versions") or []) + (page.get("DeleteMarkers") or []):
                s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])

    return _purge


@pytest.fixture(scope="session")
def ansible_env():
    """Environment for ansible-* commands run from the repository root."""
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_DEPRECATION_WARNINGS"] = "false"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env['PATH']}"
    return env


@pytest.fixture(scope="session")
def run(ansible_env):
    """Run a command from the repository root; returns CompletedProcess (text)."""

    def _run(*cmd, check=True, timeout=300, env_extra=None, **kw):
        proc = subprocess.run(
            cmd, cwd=REPO, env=dict(ansible_env, **(env_extra or {})), capture_output=True, text=True,
            timeout=timeout, check=False, **kw
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    _run.repo, _run.env = REPO, ansible_env   # for tests that start ansible-playbook themselves
    return _run
