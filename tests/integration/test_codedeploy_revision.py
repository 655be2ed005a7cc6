"""goship.deploy.codedeploy_revision and playbooks/codedeploy.yml against the lab, over HTTP:
CodeDeploy is the lab's moto server (MOTO_URL), S3 is the lab's SeaweedFS (S3_URL).

moto implements applications, deployment groups and create/get deployment, but not
RegisterApplicationRevision, the target listings or any status progress (a deployment stays
``Created``).  So these tests check what it has (application, group, the revision location of
the deployment as read back with boto3) and that the module copes with what it lacks: a clear
message for ``register: true`` and a wait that ends at ``wait_timeout`` with the last status.
The waiting/reporting logic on real response shapes is covered by
tests/unit/plugins/module_utils/test_codedeploy.py.

Names carry a per-run id; bundle objects go under tests/codedeploy/<run id>/ and are removed
afterwards (moto cannot delete CodeDeploy applications; the lab's moto state is thrown away by
``make lab-down``).
"""

import hashlib
import json
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from playbook_helpers import run_module_tasks

pytestmark = pytest.mark.lab

RUN_ID = uuid.uuid4().hex[:10]
PREFIX = "tests/codedeploy/%s/" % RUN_ID
APP = "hello-svc"
VERSION = "1.214"


def sha_file(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def codedeploy(lab):
    return boto3.client(
        "codedeploy", endpoint_url=lab["MOTO_URL"], region_name=lab["AWS_REGION"],
        aws_access_key_id=lab["AWS_ACCESS_KEY_ID"], aws_secret_access_key=lab["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
    )


@pytest.fixture(scope="module")
def bucket(lab, purge_s3):
    name = lab["S3_ARTIFACT_BUCKET"]
    yield name
    purge_s3(name, PREFIX)


@pytest.fixture(scope="module")
def sse(s3, bucket):
    """'AES256' when the lab's S3 accepts SSE-S3 headers, else 'none'."""
    try:
        s3.put_object(Bucket=bucket, Key=PREFIX + "sse-probe", Body=b"probe", ServerSideEncryption="AES256")
    except ClientError:
        return "none"
    return "AES256"


@pytest.fixture(scope="module")
def deb(repo, run):
    """The package playbooks/build.yml makes (idempotent: a rebuild of the same version changes nothing)."""
    run("ansible-playbook", "playbooks/build.yml", "-e", "version=%s" % VERSION, timeout=600)
    path = repo / "build" / VERSION / ("%s_%s_amd64.deb" % (APP, VERSION))
    assert path.is_file(), path
    return path


@pytest.fixture
def fake_deb(tmp_path):
    path = tmp_path / ("%s_%s_amd64.deb" % (APP, VERSION))
    path.write_bytes(b"!<arch>\nthe bundle does not look inside the package\n")
    return path


def unique(name):
    return "%s-%s-%s" % (name, RUN_ID, uuid.uuid4().hex[:4])


def application_exists(codedeploy, name):
    try:
        codedeploy.get_application(applicationName=name)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ApplicationDoesNotExistException", exc
        return False
    return True


def object_exists(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404, exc
        return False
    return True


def run_playbook(run, lab, extra, *args):
    proc = run("ansible-playbook", "playbooks/codedeploy.yml", "-e", json.dumps(extra), *args, check=False,
               timeout=600)
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    assert lab["AWS_SECRET_ACCESS_KEY"] not in output
    return proc.returncode, output


def playbook_vars(tmp_path, sse, **extra):
    application = unique("goship-cd")
    values = {
        "version": VERSION,
        "goship_codedeploy_application": application,
        "goship_codedeploy_deployment_group": application + "-lab",
        "goship_codedeploy_key": "%s%s/%s_%s.zip" % (PREFIX, application, APP, VERSION),
        "goship_codedeploy_bundle_path": str(tmp_path / "bundle" / ("%s_%s.zip" % (APP, VERSION))),
        "goship_codedeploy_wait": False,
        "goship_artifact_encryption": sse,
    }
    values.update(extra)
    return values


def test_playbook_creates_application_group_and_deployment_of_the_exact_revision(
        run, lab, s3, codedeploy, bucket, sse, deb, tmp_path):
    extra = playbook_vars(tmp_path, sse)
    code, output = run_playbook(run, lab, extra)
    assert code == 0, output
    application, group = extra["goship_codedeploy_application"], extra["goship_codedeploy_deployment_group"]

    assert application_exists(codedeploy, application)
    info = codedeploy.get_deployment_group(applicationName=application, deploymentGroupName=group)["deploymentGroupInfo"]
    assert info["serviceRoleArn"] == "arn:aws:iam::123456789012:role/goship-codedeploy"
    assert info["ec2TagSet"]["ec2TagSetList"] == [
        [{"Key": "app", "Value": APP, "Type": "KEY_AND_VALUE"}],
        [{"Key": "env", "Value": "lab", "Type": "KEY_AND_VALUE"}],
    ]

    deployments = codedeploy.list_deployments(applicationName=application, deploymentGroupName=group)["deployments"]
    assert len(deployments) == 1, deployments
    deployment = codedeploy.get_deployment(deploymentId=deployments[0])["deploymentInfo"]
    head = s3.head_object(Bucket=bucket, Key=extra["goship_codedeploy_key"])
    assert deployment["revision"] == {"revisionType": "S3", "s3Location": {
        "bucket": bucket,
        "key": extra["goship_codedeploy_key"],
        "bundleType": "zip",
        "version": head["VersionId"],
        "eTag": head["ETag"].strip('"'),
    }}
    assert deployment["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"
    assert deployment["description"] == "%s %s" % (APP, VERSION)
    assert deployment["autoRollbackConfiguration"] == {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}
    assert deployment["status"] == "Created"

    bundle = tmp_path / "bundle" / ("%s_%s.zip" % (APP, VERSION))
    assert head["Metadata"]["sha256"] == sha_file(bundle)
    assert head["Metadata"]["version"] == VERSION
    assert "CodeDeploy deployment %s of %s" % (deployments[0], application) in output   # the report


def test_register_true_against_moto_fails_with_a_clear_message(run, lab, bucket, sse, fake_deb, tmp_path):
    application = unique("goship-cd-register")
    results, output = play(run, lab, tmp_path, [
        ("register", dict(state="present", application=application, ensure_application=True, register=True,
                          bundle=go_bundle(fake_deb), bucket=bucket, key=PREFIX + application + "/b.zip",
                          encryption=sse)),
    ])
    result = results["register"]
    assert result["failed"] is True
    msg = result["msg"]
    assert "RegisterApplicationRevision is not implemented by the CodeDeploy endpoint %s" % lab["MOTO_URL"] in msg
    assert "set register: false" in msg
    assert "Traceback" not in msg and "<html" not in msg.lower()
    assert result["artifact"]["version_id"]            # the push before it worked
    assert result["application_created"] is True


def test_waiting_on_a_deployment_that_never_progresses_ends_at_wait_timeout(
        run, lab, codedeploy, bucket, sse, fake_deb, tmp_path):
    application = unique("goship-cd-wait")
    results, output = play(run, lab, tmp_path, [
        ("deploy and wait", dict(
            state="deployed", application=application, deployment_group=application + "-lab",
            ensure_application=True,
            ensure_deployment_group=dict(service_role_arn="arn:aws:iam::123456789012:role/goship-codedeploy",
                                         ec2_tag_filters=[dict(key="app", value=application)]),
            bundle=go_bundle(fake_deb), bucket=bucket, key=PREFIX + application + "/b.zip", encryption=sse,
            wait=True, wait_timeout=5, poll_interval=1)),
    ])
    result = results["deploy and wait"]
    assert result["failed"] is True and result["changed"] is True
    deployment_id = result["deployment_id"]
    msg = result["msg"]
    assert msg.startswith("CodeDeploy deployment %s did not reach a final status" % deployment_id), msg
    assert "within wait_timeout=5 s: last status Created" in msg
    assert result["status"] == "Created"
    assert codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"] == "Created"


def test_check_mode_creates_nothing(run, lab, s3, codedeploy, bucket, sse, deb, tmp_path):
    extra = playbook_vars(tmp_path, sse)
    code, output = run_playbook(run, lab, extra, "--check")
    assert code == 0, output
    assert "check mode: the bundle was built and validated" in output
    assert not application_exists(codedeploy, extra["goship_codedeploy_application"])
    assert not object_exists(s3, bucket, extra["goship_codedeploy_key"])
    assert not (tmp_path / "bundle").exists()


# ------------------------------------------------------------------------------------------ helpers


def go_bundle(artifact):
    return dict(go_service=dict(service=APP, version=VERSION, artifact=str(artifact),
                                health_url="http://127.0.0.1:8080/healthz"))


def play(run, lab, tmp_path, tasks, timeout=300):
    """Run codedeploy_revision tasks ``[(name, args), ...]`` on localhost; ({name: result}, output).

    CodeDeploy through MOTO_URL (the action group's endpoint_url), the upload through S3_URL.
    """
    connection = dict(region=lab["AWS_REGION"], endpoint_url=lab["MOTO_URL"], access_key=lab["AWS_ACCESS_KEY_ID"],
                      secret_key=lab["AWS_SECRET_ACCESS_KEY"])
    return run_module_tasks(
        run, "goship.deploy.codedeploy_revision", connection,
        [(name, dict(args, s3_endpoint_url=lab["S3_URL"]), None) for name, args in tasks],
        tmp_path, secrets=[lab["AWS_SECRET_ACCESS_KEY"]], timeout=timeout)
