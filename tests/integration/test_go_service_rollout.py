"""goship.deploy.go_service across the lab under load: a one-host-at-a-time upgrade through the
lab's HAProxy (drained with community.general.haproxy, socket activation on) drops no request;
the same fleet restarted plainly (socket activation off, no drain) is measured for comparison.
The releases come from the lab's S3 (uploaded by playbooks/build.yml), and a secret set through
go_service_secrets never shows in `ansible-playbook -vvv` output, the unit or `systemctl show`.

Load: wrk against HAProxy on 127.0.0.1, paced by a Lua delay so the 2 cores keep room for
Ansible; /work?ms=5 keeps requests in flight while hosts restart. Both counts are printed in the
test output (past pytest's capture); only "zero failed requests for the drained, socket-activated
rollout" is a pass/fail condition."""

import json
import re
import shutil

import pytest
from playbook_helpers import Load, status_versions

pytestmark = pytest.mark.lab

APP = "hello-svc"
RELEASES = ("5.0.0", "5.0.1")
SECRET = "rollout-s3cr3t-7c1d94e2"
PLAYBOOK = "tests/integration/playbooks/rollout.yml"
SECRETS_VARS = json.dumps({"go_service_secrets": {"HELLO_API_TOKEN": SECRET}})


def hosts(lab):
    return lab["LAB_HOST_NAMES"].split(",")


def rollout(run, version, *extra, verbose=False):
    args = ["ansible-playbook", PLAYBOOK, "-e", f"version={version}", "-e", SECRETS_VARS, *extra]
    if verbose:
        args.append("-vvv")
    return run(*args, timeout=900)


@pytest.fixture(scope="module")
def releases(run, lab, s3):
    """Both releases built and uploaded to the lab's S3 (the artifact key contract)."""
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed (lab/deps.sh installs it)")
    for version in RELEASES:
        run("ansible-playbook", "playbooks/build.yml", "-e", f"version={version}",
            "-e", "go_build_run_tests=false", "-e", "goship_build_upload=true", timeout=600)
        key = f"{APP}/{version}/{APP}_{version}_amd64.deb"
        assert s3.head_object(Bucket=lab["S3_ARTIFACT_BUCKET"], Key=key)["ContentLength"] > 0
    return RELEASES


@pytest.fixture(scope="module")
def fleet(run, lab, releases):
    """Every lab host on the first release (from S3), serving through HAProxy; purged afterwards."""
    rollout(run, releases[0])
    assert status_versions(run) == {host: releases[0] for host in hosts(lab)}
    yield hosts(lab)
    run("ansible", "app_hello_svc", "-m", "ansible.builtin.shell", "-a",
        f"apt-get purge -y {APP}; rm -f /etc/systemd/system/{APP}.service /etc/systemd/system/{APP}.socket;"
        f" systemctl daemon-reload; rm -rf /var/cache/goship/{APP}", check=False)


def test_drained_socket_activated_rollout_drops_no_request(run, lab, fleet, releases, tmp_path, capsys):
    with Load(lab, tmp_path, "go_service rollout (drain + socket activation)", capsys) as load:
        proc = rollout(run, releases[1], verbose=True)
        result = load.stop()
    assert status_versions(run) == {host: releases[1] for host in fleet}
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=[1-9]\d*\s+unreachable=0\s+failed=0", proc.stdout, re.M)
    assert sorted(recap) == sorted(fleet), proc.stdout[-3000:]
    assert result["requests"] > 1000, result
    assert result["failed"] == 0, result

    # The -vvv run carried the secret to every host without printing it: the tasks that touch it
    # are censored (no_log), and the value itself appears nowhere.
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    assert re.search(r"censored.{0,4}the output has been hidden", proc.stdout), "no no_log-censored task in -vvv output"


def test_secret_only_in_the_0600_file_and_the_process(run, lab, fleet):
    host = fleet[0]
    shown = run("ansible", host, "-m", "ansible.builtin.shell", "-a",
                f"systemctl cat {APP}.service; systemctl show {APP}.service;"
                f" stat -c '%a %U' /etc/{APP}/secrets.env").stdout
    assert SECRET not in shown
    assert "600 root" in shown
    environ = run("ansible", host, "-m", "ansible.builtin.shell", "-a",
                  f"tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value {APP}.service)/environ"
                  " | grep -c '^HELLO_API_TOKEN='").stdout
    assert re.search(r"^1$", environ, re.M), environ


def test_plain_restart_for_comparison(run, lab, fleet, releases, tmp_path, capsys):
    """Socket activation off and no drain: `systemctl restart` host by host under the same load.
    HAProxy's retries hide refused connections, so the count is printed, not judged; the test
    checks that the comparison really ran (every service restarted on a plain listening socket)."""
    rollout(run, releases[1], "-e", "go_service_socket=false", "-e", "go_service_drain=none")
    before = run("ansible", "app_hello_svc", "-o", "-m", "ansible.builtin.command", "-a",
                 f"systemctl show -p MainPID --value {APP}.service").stdout
    with Load(lab, tmp_path, "plain systemctl restart (no socket, no drain)", capsys) as load:
        run("ansible", "app_hello_svc", "-f", "1", "-m", "ansible.builtin.systemd_service",
            "-a", f"name={APP}.service state=restarted")
        result = load.stop()
    after = run("ansible", "app_hello_svc", "-o", "-m", "ansible.builtin.command", "-a",
                f"systemctl show -p MainPID --value {APP}.service").stdout
    sockets = run("ansible", "app_hello_svc", "-o", "-m", "ansible.builtin.shell", "-a",
                  f"systemctl is-active {APP}.socket || true").stdout
    pids = [dict(re.findall(r"^(\S+) \| CHANGED \| rc=0 \| \(stdout\) (\d+)$", text, re.M)) for text in (before, after)]
    assert set(pids[0]) == set(fleet) and set(pids[1]) == set(fleet), (before, after)
    assert all(pids[0][host] != pids[1][host] for host in fleet), (before, after)
    assert sockets.count("(stdout) inactive") == len(fleet), sockets
    assert result["requests"] > 1000, result
    with capsys.disabled():
        print(f"[load] plain restart failed {result['failed']} of {result['requests']} requests"
              " (HAProxy retries refused connections on other servers)")
