"""Faults during playbooks/deploy.yml on the lab, under load through its HAProxy: each case breaks
one real thing (S3 stopped, an artifact changed in S3, a full disk, PostgreSQL stopped, a release
that crash-loops after its first health check, a migration that fails halfway, a second deploy, the
controller killed with SIGKILL, a host that stops) and checks that no request is lost beyond the
documented ones, that every host still serves a healthy previous or new version and is in
rotation, and that the error names the cause. The last test prints one table of all cases.

Cases run in this order and share the fleet: each starts from the version the one before left."""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from playbook_helpers import Load, status_versions

from ansible_collections.goship.deploy.plugins.plugin_utils.haproxy import RuntimeAPI

pytestmark = pytest.mark.lab

APP = "hello-svc"
BASE, TARGET, MIG_FAIL, MIG_FIX, CRASH = "8.0.0", "8.0.1", "8.0.2", "8.0.3", "8.0.9"
# The last three cases move the fleet between the two plain releases (fewer builds): each is a
# real change of version on every host.
CONCURRENT, KILLED, UNREACHABLE = TARGET, BASE, TARGET
PLAYBOOK = "playbooks/deploy.yml"
MIGRATIONS = {"0097_fault_ok.sql": "CREATE TABLE fault_ok (id integer);\n",
              "0098_fault_half.sql": "CREATE TABLE fault_half (id integer);\nSELECT 1 / 0;\n"}
FIXED = dict(MIGRATIONS, **{"0098_fault_half.sql": "CREATE TABLE fault_half (id integer);\n"})
LOAD_CONNECTIONS = 8   # wrk -c in playbook_helpers.Load
ROWS = []   # the table: case, expected, observed, requests failed, hosts unhealthy


def hosts(lab):
    return lab["LAB_HOST_NAMES"].split(",")


def build(run, version, src=None, ldflags=""):
    extra = {"version": version, "go_build_run_tests": False, "goship_build_upload": True,
             "go_build_ldflags_extra": ldflags}
    if src:
        extra["goship_build_src"] = str(src)
    run("ansible-playbook", "playbooks/build.yml", "-e", json.dumps(extra), timeout=600)


@pytest.fixture(scope="module")
def fleet(run, lab, repo, tmp_path_factory, purge_s3):
    """Every release the cases need, in S3; every host on BASE."""
    purge_s3(lab["S3_LEDGER_BUCKET"], f"ledger/{APP}/lab/")
    sources = {}
    for name, files in (("fail", MIGRATIONS), ("fix", FIXED)):
        src = tmp_path_factory.mktemp("src-" + name) / APP
        shutil.copytree(repo / "examples" / APP, src)
        for file, sql in files.items():
            (src / "migrations" / file).write_text(sql)
        sources[name] = src
    for version in (BASE, TARGET):
        build(run, version)
    build(run, CRASH, ldflags="-X main.crashAfter=2s")
    build(run, MIG_FAIL, sources["fail"])
    build(run, MIG_FIX, sources["fix"])
    run("ansible-playbook", PLAYBOOK, "-e", f"version={BASE}", timeout=600)
    assert status_versions(run) == {host: BASE for host in hosts(lab)}
    yield hosts(lab)
    run("ansible", "app_hello_svc", "-m", "ansible.builtin.shell", "-a",
        f"apt-get purge -y {APP}; rm -rf /etc/systemd/system/{APP}.service /etc/systemd/system/{APP}.socket"
        f" /var/cache/goship/{APP}; systemctl daemon-reload", check=False)
    psql(lab, "DELETE FROM goship_schema_migrations WHERE filename LIKE '009%_fault_%';"
              " DROP TABLE IF EXISTS fault_ok, fault_half;")


def psql(lab, sql):
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=lab["PG_PORT"], PGDATABASE=lab["PG_DATABASE"],
               PGUSER=lab["PG_USER"], PGPASSWORD=lab["PG_PASSWORD"])
    return subprocess.run(["psql", "-X", "-At", "-c", sql], env=env, capture_output=True, text=True,
                          timeout=30, check=True).stdout.splitlines()


def main_pids(run):
    out = run("ansible", "app_hello_svc", "-o", "-m", "ansible.builtin.command", "-a",
              f"systemctl show -p MainPID --value {APP}.service").stdout
    return dict(re.findall(r"^(\S+) \| CHANGED \| rc=0 \| \(stdout\) (\d+)$", out, re.M))


def unhealthy(run, lab, allowed):
    """Hosts that do not serve one of the `allowed` versions or are not UP in HAProxy."""
    versions = status_versions(run)
    api = RuntimeAPI(lab["HAPROXY_SOCKET"])
    bad = []
    for host in hosts(lab):
        server = host.replace("goship-lab-", "")
        status = api.server_stats(lab["HAPROXY_BACKEND"], server).get("status", "")
        if versions.get(host) not in allowed or not status.startswith("UP"):
            bad.append(f"{host}: {versions.get(host, 'no answer')}, {status}")
    return bad


def deploy(run, version, *extra, check=False):
    return run("ansible-playbook", PLAYBOOK, "-e", f"version={version}", *extra, check=check, timeout=600)


def said(pattern, text):
    """The part of a run's output that matches `pattern` (the cause it names), for the table."""
    flat = " ".join(text.split())   # the output wraps long messages
    match = re.search(pattern, flat)
    assert match, "%r not in the output:\n%s" % (pattern, text[-3000:])
    return match.group(0)[:60]


def record(case, expected, observed, load, bad, documented_loss=0):
    ROWS.append((case, expected, observed, load["failed"], len(bad)))
    assert not bad, bad
    assert load["failed"] <= documented_loss, load


def deploy_until(run, version, patterns, action, timeout=300, extra=()):
    """Start deploy.yml; once lines of its output have matched each of `patterns` in turn, run
    action(proc) in a thread (the output keeps being read meanwhile); wait for the end.
    Returns (returncode, output)."""
    proc = subprocess.Popen(["ansible-playbook", PLAYBOOK, "-e", f"version={version}", *extra], cwd=run.repo,
                            env=run.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    killer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    killer.start()
    lines, waiting, acting = [], list(patterns), None
    try:
        for line in proc.stdout:
            lines.append(line)
            if waiting and re.search(waiting[0], line):
                waiting.pop(0)
                if not waiting:
                    acting = threading.Thread(target=action, args=(proc,))
                    acting.start()
        proc.wait(timeout=60)
    finally:
        killer.cancel()
    if acting:
        acting.join(timeout=600)
    assert not waiting, "never saw %r:\n%s" % (waiting[0], "".join(lines)[-3000:])
    return proc.returncode, "".join(lines)


# Output lines that mark where a rollout is: the release task of a batch starts; host 1's ends.
RELEASE_TASK = r"^TASK \[goship\.deploy\.go_service : Release"
FIRST_HOST_RELEASED = r"^(ok|changed|fatal): \[goship-lab-app-01\]"


def restart_lab_service(run, s3, lab, name):
    """Start the lab service a case stopped (lab/services.sh waits until it answers), then wait
    until S3 answers again (bounded)."""
    subprocess.run(["bash", "lab/services.sh", name], cwd=run.repo, check=True, capture_output=True, timeout=300)
    deadline = time.monotonic() + 60
    while True:
        try:
            s3.head_bucket(Bucket=lab["S3_ARTIFACT_BUCKET"])
            return
        except Exception:   # any failure to answer: not up yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_s3_down_at_download_time(run, lab, s3, fleet, tmp_path, capsys):
    with Load(lab, tmp_path, "S3 down", capsys, min_seconds=0) as load:
        subprocess.run(["bash", "-c", "source lab/lib.sh && stop_pid seaweedfs 30"], cwd=run.repo, check=True)
        try:
            proc = deploy(run, TARGET)
        finally:
            restart_lab_service(run, s3, lab, "s3")
        result = load.stop()
    assert proc.returncode != 0
    record("S3 down at download", "refused, hosts untouched", said(r"S3 cannot be reached", proc.stdout), result,
           unhealthy(run, lab, [BASE]))


def test_artifact_corrupted_in_s3(run, lab, s3, fleet, tmp_path, capsys):
    bucket, key = lab["S3_ARTIFACT_BUCKET"], f"{APP}/{TARGET}/{APP}_{TARGET}_amd64.deb"
    original = s3.get_object(Bucket=bucket, Key=key)
    body, metadata = original["Body"].read(), original["Metadata"]
    s3.put_object(Bucket=bucket, Key=key, Body=body[:-1] + bytes([body[-1] ^ 1]), Metadata=metadata)
    # A verified copy in the controller cache would be used without a download (as it should):
    # drop it, so the corrupted object is what the controller fetches.
    (Path.home() / ".cache" / "goship" / "artifacts" / os.path.basename(key)).unlink(missing_ok=True)
    try:
        with Load(lab, tmp_path, "corrupted artifact", capsys, min_seconds=0) as load:
            proc = deploy(run, TARGET)
            result = load.stop()
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata)
    assert proc.returncode != 0
    observed = said(r"SHA-256 mismatch for \S+ [^:]*: expected \S+ \([^)]*\) but the downloaded bytes hash to", proc.stdout)
    record("artifact corrupted in S3", "refused by the checksum", observed, result,
           unhealthy(run, lab, [BASE]))


def test_disk_full_at_download_time(run, lab, fleet, tmp_path, capsys):
    full = fleet[-1]
    cache = f"/var/cache/goship/{APP}"
    run("ansible", full, "-m", "ansible.builtin.shell", "-a", f"mount -t tmpfs -o size=64k tmpfs {cache}")
    try:
        with Load(lab, tmp_path, "disk full", capsys, min_seconds=0) as load:
            before = main_pids(run)
            proc = deploy(run, TARGET)
            result = load.stop()
    finally:
        run("ansible", full, "-m", "ansible.builtin.shell", "-a", f"umount {cache}")
    assert proc.returncode != 0
    observed = said(r"could not put \S+ into the host cache [^:]+: No space left on device", proc.stdout)
    assert main_pids(run) == before
    record("disk full at download", "refused, nothing restarted", observed, result,
           unhealthy(run, lab, [BASE]))


def test_postgresql_down_when_migrations_run(run, lab, s3, fleet, tmp_path, capsys):
    pg_bin = subprocess.run(["bash", "-c", "ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1"],
                            capture_output=True, text=True, check=True).stdout.strip()
    stop = ["runuser", "-u", "postgres", "--", f"{pg_bin}/pg_ctl", "-D", str(run.repo / "lab/.state/postgres"),
            "-m", "fast", "-w", "-t", "30", "stop"]
    with Load(lab, tmp_path, "PostgreSQL down", capsys, min_seconds=0) as load:
        before = main_pids(run)
        subprocess.run(stop, check=True, capture_output=True, timeout=60)
        try:
            proc = deploy(run, TARGET)
        finally:
            restart_lab_service(run, s3, lab, "postgres")
        result = load.stop()
    assert proc.returncode != 0 and "migrations failed, no host was restarted" in proc.stdout, proc.stdout[-3000:]
    observed = said(r"(connection to server|could not connect)[^|]*", proc.stdout)
    assert main_pids(run) == before
    record("PostgreSQL down at migrations", "refused, nothing restarted", observed,
           result, unhealthy(run, lab, [BASE]))


def test_crash_loop_within_the_stability_window(run, lab, fleet, tmp_path, capsys):
    with Load(lab, tmp_path, "crash after the first check", capsys, min_seconds=0) as load:
        before = main_pids(run)
        proc = deploy(run, CRASH, "-e", "go_service_health_stable=4")
        result = load.stop()
    assert proc.returncode != 0
    observed = said(r"the unit restarted during the 4 s stability window", proc.stdout)
    assert "Rolled back to " + BASE in proc.stdout, proc.stdout[-3000:]
    after = main_pids(run)
    assert [after[host] == before[host] for host in fleet] == [False, True, True]   # hosts 2 and 3 untouched
    record("crash-loop in stability window", "caught on host 1, rolled back; 2, 3 untouched",
           observed, result, unhealthy(run, lab, [BASE]))


def test_migration_fails_halfway_then_the_fix_applies_only_what_is_missing(run, lab, fleet, tmp_path, capsys):
    with Load(lab, tmp_path, "migration fails halfway", capsys, min_seconds=0) as load:
        before = main_pids(run)
        failed = deploy(run, MIG_FAIL)
        after_fail = main_pids(run)
        applied_fail = psql(lab, "SELECT filename, applied_at FROM goship_schema_migrations"
                                 " WHERE filename LIKE '009%_fault_%'")
        half = psql(lab, "SELECT to_regclass('public.fault_half') IS NULL")
        deploy(run, MIG_FIX, check=True)
        result = load.stop()
    assert failed.returncode != 0 and "0098_fault_half.sql" in failed.stdout
    observed = said(r"0098_fault_half\.sql:\d+: ERROR: +division by zero", failed.stdout)
    assert after_fail == before and applied_fail[0].startswith("0097_fault_ok.sql|") and half == ["t"]
    # The fix applies 0098 only: 0097's row (with its time) is the one the failed run wrote.
    assert psql(lab, "SELECT filename, applied_at FROM goship_schema_migrations WHERE filename LIKE '009%_fault_%'"
                     " ORDER BY 1")[:len(applied_fail)] == applied_fail
    assert psql(lab, "SELECT filename FROM goship_schema_migrations WHERE filename LIKE '009%_fault_%' ORDER BY 1") \
        == ["0097_fault_ok.sql", "0098_fault_half.sql"]
    record("migration fails halfway", "no restart; the fix applies only 0098", observed, result,
           unhealthy(run, lab, [MIG_FIX]))


def test_a_second_deploy_is_refused_while_one_runs(run, lab, fleet, tmp_path, capsys):
    second = {}

    def start_second(_proc):
        second["proc"] = deploy(run, CONCURRENT)

    with Load(lab, tmp_path, "second deploy", capsys, min_seconds=0) as load:
        # A long stability window keeps the first rollout going (>= 8 s per host) while the
        # second one checks the hosts and reaches the lock.
        code, output = deploy_until(run, CONCURRENT, [RELEASE_TASK], start_second,
                                    extra=["-e", "go_service_health_stable=8"])
        result = load.stop()
    assert code == 0, output[-3000:]
    refused = second["proc"]
    assert refused.returncode != 0 and "goship_break_lock=true" in refused.stdout, refused.stdout[-3000:]
    record("second deploy while one runs", "refused by the lock, naming the holder",
           said(r"A deploy of \S+ to \S+ is in progress", refused.stdout), result,
           unhealthy(run, lab, [CONCURRENT]))


def test_controller_killed_mid_rollout(run, lab, fleet, tmp_path, capsys):
    with Load(lab, tmp_path, "controller SIGKILL", capsys, min_seconds=0) as load:
        # Killed a second after host 2's release began: host 2 is drained, maybe half installed.
        code, output = deploy_until(run, KILLED, [RELEASE_TASK, FIRST_HOST_RELEASED, RELEASE_TASK],
                                    lambda proc: (time.sleep(1), os.killpg(proc.pid, signal.SIGKILL)))
        stale = deploy(run, KILLED)
        broken = deploy(run, KILLED, "-e", "goship_break_lock=true", check=True)
        result = load.stop()
    assert code == -signal.SIGKILL
    assert stale.returncode != 0 and "goship_break_lock=true" in stale.stdout, stale.stdout[-3000:]
    observed = said(r"the run was killed and left the lock behind", stale.stdout)
    assert "DEPLOY REPORT" in broken.stdout
    record("controller SIGKILL mid-rollout", "stale lock reported; broken explicitly, re-run converges",
           observed, result, unhealthy(run, lab, [KILLED]))


def test_a_host_stops_mid_rollout(run, lab, fleet, tmp_path, capsys):
    stopped = fleet[1]
    with Load(lab, tmp_path, "host stops", capsys, min_seconds=0) as load:
        try:
            code, output = deploy_until(run, UNREACHABLE, [RELEASE_TASK, FIRST_HOST_RELEASED],
                                        lambda _proc: subprocess.run(["docker", "pause", stopped], check=True))
        finally:
            subprocess.run(["docker", "unpause", stopped], check=False)
        again = deploy(run, UNREACHABLE, check=True)
        result = load.stop()
    assert code != 0
    observed = said(f"{stopped}: unreachable", output)
    assert status_versions(run) == {host: UNREACHABLE for host in fleet}
    # Documented loss: the requests in flight on the host at the moment it froze, before the drain
    # took it out, at most one per load connection (8); wrk counts each twice (its own timeout,
    # then HAProxy's 504).
    record("host stops mid-rollout", "rollout stops, report says unreachable; re-run converges",
           observed, result, unhealthy(run, lab, [UNREACHABLE]),
           documented_loss=2 * LOAD_CONNECTIONS)
    assert again.returncode == 0


def test_print_the_table(run, capsys):
    header = ("case", "expected", "observed (from the output)", "failed", "hosts unhealthy")
    lines = ["%-30s | %-56s | %-60s | %6s | %s" % header]
    lines += ["%-30s | %-56s | %-60s | %6d | %d" % row for row in ROWS]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    (run.repo / "build" / "test-logs").mkdir(parents=True, exist_ok=True)
    (run.repo / "build" / "test-logs" / "faults.txt").write_text("\n".join(lines) + "\n")
    assert len(ROWS) == 9, ROWS
