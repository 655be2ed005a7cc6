"""playbooks/deploy.yml on the lab: real hosts found through the EC2 API, releases from the lab's
S3, migrations on its PostgreSQL, drained from its HAProxy, the ledger and lock in S3.

Scenarios, in order (each builds on the fleet the one before left): a first rollout to every host;
a re-run of the same version changes nothing; an upgrade whose report (the ledger entry) matches
what each host's /status says; requests that fail before any host is touched (no version, a
version not in S3, the lock held by another run); a release that fails its gate on host 2 only
(rolled back there, host 3 untouched, the rollout failed and says so); a failing migration
(no host restarted); rollback.yml to the previous good release, and from the hosts' caches with
S3 unreachable; migrate.yml's dry run lists
what is pending and changes nothing, and applying restarts nothing; promote.yml copies a good
release to two destinations once and refuses one that failed here; provision.yml prepares the
hosts and changes nothing the second time."""

import hashlib
import json
import re
import shutil
import subprocess

import pytest
from playbook_helpers import status_versions

pytestmark = pytest.mark.lab

APP = "hello-svc"
FIRST, SECOND, THIRD, BROKEN_MIGRATION = "7.0.0", "7.0.1", "7.0.2", "7.0.3"
PLAYBOOK = "playbooks/deploy.yml"
# Makes THIRD fail to start on one host only (a host-specific problem): its binary reports THIRD.
DROPIN = "/etc/systemd/system/hello-svc.service.d/zz-test-refuse.conf"


def hosts(lab):
    return lab["LAB_HOST_NAMES"].split(",")


def deploy(run, version=None, *extra, check=True):
    args = ["ansible-playbook", PLAYBOOK] + (["-e", f"version={version}"] if version else []) + list(extra)
    return run(*args, check=check, timeout=600)


def recap(proc):
    """{host: (changed, failed)} from the PLAY RECAP."""
    return {m.group(1): (int(m.group(2)), int(m.group(3))) for m in re.finditer(
        r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", proc.stdout, re.M)}


def ledger(s3, lab, name):
    body = s3.get_object(Bucket=lab["S3_LEDGER_BUCKET"], Key=f"ledger/{APP}/lab/{name}")["Body"].read()
    return json.loads(body)


def last_history(s3, lab):
    listed = s3.list_objects_v2(Bucket=lab["S3_LEDGER_BUCKET"], Prefix=f"ledger/{APP}/lab/history/")
    newest = sorted(item["Key"] for item in listed.get("Contents", []))[-1]
    return json.loads(s3.get_object(Bucket=lab["S3_LEDGER_BUCKET"], Key=newest)["Body"].read())


def history_count(s3, lab):
    listed = s3.list_objects_v2(Bucket=lab["S3_LEDGER_BUCKET"], Prefix=f"ledger/{APP}/lab/history/")
    return len(listed.get("Contents", []))


@pytest.fixture(scope="module")
def releases(run, lab, s3, purge_s3, repo):
    """Four releases in S3: three good ones and one whose last migration fails."""
    purge_s3(lab["S3_LEDGER_BUCKET"], f"ledger/{APP}/lab/")
    broken = repo / "build" / "deploy-test-broken-migration"
    shutil.rmtree(broken, ignore_errors=True)
    shutil.copytree(repo / "examples" / APP, broken)
    (broken / "migrations" / "0099_broken.sql").write_text("CREATE TABLE deploy_half_done (id integer);\nSELECT 1 / 0;\n")
    for version, src in ((FIRST, None), (SECOND, None), (THIRD, None), (BROKEN_MIGRATION, broken)):
        extra = {"version": version, "go_build_run_tests": False, "goship_build_upload": True}
        if src:
            extra["goship_build_src"] = str(src)
        run("ansible-playbook", "playbooks/build.yml", "-e", json.dumps(extra), timeout=600)
    yield
    run("ansible", "app_hello_svc", "-m", "ansible.builtin.shell", "-a",
        f"apt-get purge -y {APP}; rm -rf /etc/systemd/system/{APP}.service /etc/systemd/system/{APP}.socket"
        f" /etc/systemd/system/{APP}.service.d /var/cache/goship/{APP}; systemctl daemon-reload", check=False)


def test_first_rollout_reaches_every_host(run, lab, s3, releases):
    proc = deploy(run, FIRST)
    assert status_versions(run) == {host: FIRST for host in hosts(lab)}
    assert ledger(s3, lab, "current.json")["version"] == FIRST
    assert all(changed > 0 and failed == 0 for host, (changed, failed) in recap(proc).items() if host != "localhost")


def test_a_rerun_of_the_same_version_changes_nothing(run, lab, s3, releases):
    entries = history_count(s3, lab)
    proc = deploy(run, FIRST)
    assert all(changed == 0 and failed == 0 for changed, failed in recap(proc).values()), proc.stdout[-2500:]
    assert set(recap(proc)) == set(hosts(lab)) | {"localhost"}
    assert history_count(s3, lab) == entries   # a no-op records nothing and takes no lock
    assert "Drain" not in proc.stdout and "Release " + FIRST not in proc.stdout


def test_upgrade_report_matches_what_the_hosts_run(run, lab, s3, releases):
    deploy(run, SECOND)
    report = last_history(s3, lab)
    assert report["result"] == "succeeded" and report["version"] == SECOND
    assert report["artifact"]["key"] == f"{APP}/{SECOND}/{APP}_{SECOND}_amd64.deb"
    assert len(report["artifact"]["sha256"]) == 64
    running = status_versions(run)
    assert {h["host"]: h["version_after"] for h in report["hosts"]} == running == {h: SECOND for h in hosts(lab)}
    for entry in report["hosts"]:
        assert entry["outcome"] == "upgraded" and entry["version_before"] == FIRST
        assert entry["instance_id"].startswith("i-")
        assert entry["health"] == f"healthy, version {SECOND}"
        assert {"install", "restart", "gate"} <= set(entry["phases"])
    assert ledger(s3, lab, "current.json")["version"] == SECOND


@pytest.mark.parametrize("args, says", [
    ((), "pass the version to deploy"),
    (("-e", "version=v7"), "must start with a digit"),
    (("-e", "version=9.9.9"), f"{APP}/9.9.9/{APP}_9.9.9_amd64.deb"),
])
def test_bad_requests_fail_before_any_host_is_touched(run, lab, releases, args, says):
    proc = run("ansible-playbook", PLAYBOOK, *args, check=False, timeout=300)
    assert proc.returncode != 0
    assert says in proc.stdout + proc.stderr
    assert set(recap(proc)) == {"localhost"}, proc.stdout[-2000:]
    assert status_versions(run) == {host: SECOND for host in hosts(lab)}


def test_a_held_lock_refuses_the_rollout(run, lab, s3, releases):
    key = f"ledger/{APP}/lab/lock.json"
    holder = {"holder": "someone-else", "controller": "ci-runner-7", "pid": 4242, "version": "7.9.9",
              "started": "2026-12-06T01:02:03Z", "run_id": "other-run"}
    s3.put_object(Bucket=lab["S3_LEDGER_BUCKET"], Key=key, Body=json.dumps(holder).encode())
    try:
        proc = deploy(run, THIRD, check=False)
        assert proc.returncode != 0
        text = proc.stdout + proc.stderr
        assert "someone-else on ci-runner-7 (pid 4242)" in text and "7.9.9" in text
        assert "goship_break_lock=true" in text
        assert status_versions(run) == {host: SECOND for host in hosts(lab)}
        assert json.loads(s3.get_object(Bucket=lab["S3_LEDGER_BUCKET"], Key=key)["Body"].read())["run_id"] == "other-run"
    finally:
        s3.delete_object(Bucket=lab["S3_LEDGER_BUCKET"], Key=key)


def test_a_release_failing_on_host_two_is_rolled_back_there_and_stops_the_rollout(run, lab, s3, releases):
    first, second, third = hosts(lab)
    run("ansible", second, "-m", "ansible.builtin.shell", "-a",
        f"mkdir -p {DROPIN.rsplit('/', 1)[0]} && printf '[Service]\\nExecStartPre=/bin/sh -c \"! /usr/bin/{APP} -version"
        f" | grep -qx {THIRD}\"\\n' > {DROPIN} && systemctl daemon-reload")
    try:
        proc = deploy(run, THIRD, check=False)
    finally:
        run("ansible", second, "-m", "ansible.builtin.shell", "-a", f"rm -f {DROPIN} && systemctl daemon-reload")
    assert proc.returncode != 0
    assert status_versions(run) == {first: THIRD, second: SECOND, third: SECOND}
    report = last_history(s3, lab)
    outcomes = {h["host"]: h["outcome"] for h in report["hosts"]}
    assert report["result"] == "failed"
    assert outcomes == {first: "upgraded", second: "rolled_back", third: "skipped"}
    failed = next(h for h in report["hosts"] if h["host"] == second)
    assert "journal" in failed["message"] and f"Rolled back to {SECOND}" in failed["message"]
    assert ledger(s3, lab, "current.json")["version"] == SECOND
    assert f"{second}: rolled_back" in proc.stdout


def test_a_failing_migration_restarts_no_host(run, lab, s3, releases):
    before = run("ansible", "app_hello_svc", "-o", "-m", "ansible.builtin.command", "-a",
                 f"systemctl show -p InvocationID --value {APP}.service").stdout
    proc = deploy(run, BROKEN_MIGRATION, check=False)
    after = run("ansible", "app_hello_svc", "-o", "-m", "ansible.builtin.command", "-a",
                f"systemctl show -p InvocationID --value {APP}.service").stdout
    assert proc.returncode != 0
    assert "migrations failed" in proc.stdout and "0099_broken.sql" in proc.stdout
    assert sorted(before.splitlines()) == sorted(after.splitlines())
    report = last_history(s3, lab)
    assert report["result"] == "failed" and {h["outcome"] for h in report["hosts"]} <= {"skipped", "unchanged"}


def test_rollback_returns_every_host_to_the_previous_good_release(run, lab, s3, releases):
    # The ledger: FIRST and SECOND succeeded (current: SECOND); THIRD and BROKEN_MIGRATION failed.
    proc = run("ansible-playbook", "playbooks/rollback.yml", timeout=600)
    assert status_versions(run) == {host: FIRST for host in hosts(lab)}
    assert ledger(s3, lab, "current.json")["version"] == FIRST
    assert "DEPLOY REPORT" in proc.stdout
    run("ansible-playbook", "playbooks/rollback.yml", "-e", f"version={SECOND}", timeout=600)
    assert status_versions(run) == {host: SECOND for host in hosts(lab)}


def test_rollback_with_s3_unreachable_uses_the_host_caches(run, lab, s3, releases):
    # The controller's S3 endpoint points at a closed port: the ledger, the lock and the artifacts
    # are out of reach, as in an S3 outage; the hosts still hold the releases they ran.
    dead = json.dumps({"goship_aws": {"region": lab["AWS_REGION"], "endpoint_url": "http://127.0.0.1:9",
                                      "access_key": lab["AWS_ACCESS_KEY_ID"], "secret_key": lab["AWS_SECRET_ACCESS_KEY"]}})
    entries = history_count(s3, lab)
    refused = run("ansible-playbook", "playbooks/rollback.yml", "-e", dead, check=False, timeout=300)
    assert refused.returncode != 0 and "-e version=X -e goship_offline=true" in refused.stdout
    assert status_versions(run) == {host: SECOND for host in hosts(lab)}
    proc = run("ansible-playbook", "playbooks/rollback.yml", "-e", dead, "-e", f"version={FIRST}",
               "-e", "goship_offline=true", timeout=600)
    assert status_versions(run) == {host: FIRST for host in hosts(lab)}
    assert "DEPLOY REPORT" in proc.stdout and "3 upgraded" in proc.stdout
    assert history_count(s3, lab) == entries   # nothing could be written to the ledger


def psql(lab, sql):
    return subprocess.run(
        ["psql", "-X", "-At", "-h", "127.0.0.1", "-p", lab["PG_PORT"], "-U", lab["PG_USER"], "-d", lab["PG_DATABASE"],
         "-c", sql], env={"PGPASSWORD": lab["PG_PASSWORD"], "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=30, check=True).stdout.strip()


def test_migrate_lists_pending_in_check_mode_and_applies_without_restarting(run, lab, s3, releases):
    invocations = sorted(run("ansible", "app_hello_svc", "-o", "-m", "ansible.builtin.command", "-a",
                             f"systemctl show -p InvocationID --value {APP}.service").stdout.splitlines())
    applied_before = psql(lab, "SELECT filename FROM goship_schema_migrations ORDER BY 1")
    dry = run("ansible-playbook", "playbooks/migrate.yml", "-e", f"version={BROKEN_MIGRATION}", "--check", timeout=300)
    assert f"{APP} {BROKEN_MIGRATION}: 1 pending: 0099_broken.sql" in dry.stdout
    assert psql(lab, "SELECT filename FROM goship_schema_migrations ORDER BY 1") == applied_before
    assert psql(lab, "SELECT to_regclass('deploy_half_done') IS NULL") == "t"
    done = run("ansible-playbook", "playbooks/migrate.yml", "-e", f"version={SECOND}", timeout=300)
    assert f"{APP} {SECOND}: 0 applied" in done.stdout
    again = run("ansible-playbook", "playbooks/migrate.yml", "-e", f"version={SECOND}", timeout=300)
    assert all(changed == 0 for changed, _failed in recap(again).values()), again.stdout[-2000:]
    broken = run("ansible-playbook", "playbooks/migrate.yml", "-e", f"version={BROKEN_MIGRATION}", check=False, timeout=300)
    assert broken.returncode != 0 and "0099_broken.sql" in broken.stdout
    assert psql(lab, "SELECT filename FROM goship_schema_migrations ORDER BY 1") == applied_before
    # Neither run restarted a service or left the deploy lock behind.
    assert sorted(run("ansible", "app_hello_svc", "-o", "-m", "ansible.builtin.command", "-a",
                      f"systemctl show -p InvocationID --value {APP}.service").stdout.splitlines()) == invocations
    listed = s3.list_objects_v2(Bucket=lab["S3_LEDGER_BUCKET"], Prefix=f"ledger/{APP}/lab/lock.json")
    assert listed.get("KeyCount", 0) == 0


def test_promote_copies_a_good_release_to_two_destinations_once(run, lab, s3, releases, purge_s3):
    ledger_bucket = lab["S3_LEDGER_BUCKET"]
    targets = [{"name": f"prod-{side}", "env": f"prod-{side}", "artifact_bucket": f"goship-promote-{side}-it",
                "ledger_bucket": ledger_bucket} for side in ("a", "b")]
    for target in targets:
        s3.create_bucket(Bucket=target["artifact_bucket"])
        s3.put_bucket_versioning(Bucket=target["artifact_bucket"], VersioningConfiguration={"Status": "Enabled"})
    source = ledger(s3, lab, "current.json")["artifact"]   # SECOND, after the rollbacks above

    def promote(version, check=True):
        extra = json.dumps({"version": version, "goship_promote_targets": targets})
        return run("ansible-playbook", "playbooks/promote.yml", "-e", extra, check=check, timeout=300)

    try:
        promote(SECOND)
        for target in targets:
            body = s3.get_object(Bucket=target["artifact_bucket"], Key=source["key"])["Body"].read()
            assert hashlib.sha256(body).hexdigest() == source["sha256"]
            listed = s3.list_objects_v2(Bucket=ledger_bucket, Prefix=f"ledger/{APP}/{target['env']}/")
            keys = [item["Key"] for item in listed.get("Contents", [])]
            assert len(keys) == 1 and "/history/" in keys[0]   # a history entry; no current.json there
            entry = json.loads(s3.get_object(Bucket=ledger_bucket, Key=keys[0])["Body"].read())
            assert (entry["result"], entry["version"], entry["source"]["env"]) == ("promoted", SECOND, "lab")
            assert entry["artifact"]["sha256"] == source["sha256"]
        again = promote(SECOND)
        assert recap(again)["localhost"] == (0, 0), again.stdout[-2000:]
        refused = promote(THIRD, check=False)   # THIRD failed its gate in lab
        assert refused.returncode != 0 and f"{THIRD} never rolled out successfully to lab" in refused.stdout
        for target in targets:
            listed = s3.list_objects_v2(Bucket=target["artifact_bucket"], Prefix=f"{APP}/{THIRD}/")
            assert listed.get("KeyCount", 0) == 0
    finally:
        for target in targets:
            purge_s3(target["artifact_bucket"], "")
            s3.delete_bucket(Bucket=target["artifact_bucket"])
            purge_s3(ledger_bucket, f"ledger/{APP}/{target['env']}/")


def test_provision_prepares_every_host_and_a_rerun_changes_nothing(run, lab, releases):
    first_host = hosts(lab)[0]
    run("ansible", first_host, "-m", "ansible.builtin.file", "-a", f"path=/var/cache/goship/{APP} state=absent")
    first = run("ansible-playbook", "playbooks/provision.yml", timeout=300)
    assert recap(first)[first_host][0] > 0, first.stdout[-2000:]
    state = run("ansible", "app_hello_svc", "-o", "-m", "ansible.builtin.shell", "-a",
                f"stat -c '%a:%U' /var/cache/goship/{APP} /etc/{APP}; getent passwd {APP} | cut -d: -f7; "
                "command -v psql").stdout
    for host in hosts(lab):
        line = next(line for line in state.splitlines() if line.startswith(host + " "))
        assert "700:root\\n750:root\\n/usr/sbin/nologin\\n/usr/bin/psql" in line, state
    again = run("ansible-playbook", "playbooks/provision.yml", timeout=300)
    assert all(changed == 0 for changed, _failed in recap(again).values()), again.stdout[-2000:]
