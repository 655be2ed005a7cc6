"""Any Go service by variables alone: examples/quote-api (not hello-svc in every way that matters
to a deploy tool: its program is `quoted`, not the package name; it binds $PORT itself, with no
socket activation; health at /-/ready; the version as a plain-text body at /version; no
migrations) built with playbooks/build.yml and deployed with goship.deploy.go_service on one lab
host: first install, a re-run that changes nothing, an upgrade, a release that crashes at start
(rolled back, the message shows the journal), go_service_state=absent leaving nothing behind (a
second time changing nothing), and a failed first install that the next run does not call
unchanged."""

import json
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.lab

APP, BINARY = "quote-api", "quoted"
FIRST, SECOND, BROKEN = "1.0.0", "1.1.0", "1.2.0"
PLAYBOOK = "tests/integration/playbooks/any_service.yml"
BUILD_VARS = {"goship_app": APP, "goship_build_binary": BINARY, "goship_build_socket": False,
              "goship_build_config": {}, "goship_build_upload": False, "go_build_run_tests": False}
# A release that cannot start, as a bad build would: it exits at once with a message on stderr.
BROKEN_GO = '''package main

import (
\t"fmt"
\t"os"
)

func init() {
\tfmt.Fprintln(os.Stderr, "quoted: refusing to start: configuration schema v9 is not supported")
\tos.Exit(3)
}
'''


@pytest.fixture(scope="module")
def target(lab):
    return lab["LAB_HOST_NAMES"].split(",")[-1]


@pytest.fixture(scope="module")
def built(run, repo, tmp_path_factory):
    """The two good releases from the example, and a broken one from a copy outside git."""
    outputs = {}
    for version in (FIRST, SECOND):
        extra = dict(BUILD_VARS, version=version, goship_build_src=str(repo / "examples" / APP))
        outputs[version] = run("ansible-playbook", "playbooks/build.yml", "-e", json.dumps(extra), timeout=600)
    broken = tmp_path_factory.mktemp("quote-api-broken") / APP
    shutil.copytree(repo / "examples" / APP, broken)
    (broken / "zz_broken.go").write_text(BROKEN_GO)
    extra = dict(BUILD_VARS, version=BROKEN, goship_build_src=str(broken))
    outputs[BROKEN] = run("ansible-playbook", "playbooks/build.yml", "-e", json.dumps(extra), timeout=600,
                          env_extra={"SOURCE_DATE_EPOCH": "1767225600"})
    return outputs


@pytest.fixture
def play(run, target, tmp_path):
    """Run the playbook on the target; (the process, go_service_result as the playbook saved it)."""
    def _play(*extra, check=True):
        result_file = tmp_path / "result.json"
        result_file.unlink(missing_ok=True)
        proc = run("ansible-playbook", PLAYBOOK, "-e", f"target={target}", "-e", f"result_file={result_file}", *extra,
                   check=check, timeout=300)
        return proc, json.loads(result_file.read_text()) if result_file.exists() else {}
    return _play


def changed(proc):
    return int(re.search(r"^\S+\s+: ok=\d+\s+changed=(\d+)", proc.stdout, re.M).group(1))


def served_version(run, target):
    """The plain-text body of quote-api's /version on the host ('' when it does not answer)."""
    proc = run("ansible", target, "-o", "-m", "ansible.builtin.uri", "-a",
               "url=http://127.0.0.1:9090/version return_content=true", check=False)
    match = re.search(r"SUCCESS => (\{.*\})$", proc.stdout, re.M)
    return json.loads(match.group(1))["content"] if match else ""


def on_host(run, target, command):
    proc = run("ansible", target, "-o", "-m", "ansible.builtin.shell", "-a", command, check=False)
    return proc.stdout


def test_build_packages_the_binary_by_its_own_name_without_socket_or_migrations(built, repo):
    deb = repo / "build" / FIRST / f"{APP}_{FIRST}_amd64.deb"
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    assert f"./usr/bin/{BINARY}" in listing
    assert f"./lib/systemd/system/{APP}.service" in listing
    assert ".socket" not in listing and "migrations" not in listing
    unit = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    assert f"ExecStart=/usr/bin/{BINARY}".encode() in unit
    for output in (built[FIRST].stdout + built[FIRST].stderr, built[BROKEN].stdout + built[BROKEN].stderr):
        assert not [line for line in output.splitlines() if "WARNING" in line and "migrations" in line], output
    # Outside git: said once, stamped from SOURCE_DATE_EPOCH (2026-01-01), not 1970.
    assert built[BROKEN].stdout.count("is not in a git checkout") == 1
    assert "2026-01-01T00:00:00Z" in built[BROKEN].stdout and "from SOURCE_DATE_EPOCH" in built[BROKEN].stdout
    assert "is not in a git checkout" not in built[FIRST].stdout


def test_install_rerun_upgrade_failure_and_removal(run, built, target, play):
    on_host(run, target, f"dpkg --purge {APP}; userdel {APP}; groupdel {APP}; rm -rf /etc/{APP} /var/lib/{APP} "
            f"/var/cache/goship/{APP} /etc/systemd/system/{APP}.*; systemctl daemon-reload")

    proc, result = play("-e", f"version={FIRST}")
    assert result["outcome"] == "upgraded" and result["version_after"] == FIRST, proc.stdout
    assert served_version(run, target) == FIRST + "\n"

    proc, result = play("-e", f"version={FIRST}")
    assert result["outcome"] == "unchanged" and changed(proc) == 0, proc.stdout

    proc, result = play("-e", f"version={SECOND}")
    assert (result["outcome"], result["version_before"], result["version_after"]) == ("upgraded", FIRST, SECOND)

    proc, result = play("-e", f"version={BROKEN}", check=False)
    assert proc.returncode != 0 and result["outcome"] == "rolled_back", proc.stdout
    message = result["message"]
    assert "refusing to start: configuration schema v9" in message, message   # the journal tail
    assert "restarts" in message and f"Rolled back to {SECOND}" in message, message
    assert "drained" not in message, message   # drain none: nothing to say about rotation
    assert result["unit_state"]["journal"], result
    assert served_version(run, target) == SECOND + "\n"

    proc, result = play("-e", "go_service_state=absent")
    assert result["changed"] and f"purge package {APP}" in result["removed"], proc.stdout
    paths = [f"/etc/{APP}", f"/var/lib/{APP}", f"/var/cache/goship/{APP}", f"/etc/systemd/system/{APP}.*",
             f"/usr/bin/{BINARY}", f"/lib/systemd/system/{APP}.*"]
    left = on_host(run, target, f"dpkg-query -W {APP}; getent passwd {APP} || echo no-user; "
                   f"getent group {APP} || echo no-group; ls -d {' '.join(paths)}; "
                   f"systemctl show -p LoadState {APP}.service; true")
    assert "no packages found matching quote-api" in left and "no-user" in left and "no-group" in left, left
    assert "LoadState=not-found" in left, left
    assert left.count("No such file or directory") == len(paths), left

    proc, result = play("-e", "go_service_state=absent")
    assert changed(proc) == 0 and result["removed"] == [], proc.stdout

    # A failed first install: nothing to roll back to; the next run tries again (not "unchanged").
    proc, result = play("-e", f"version={BROKEN}", check=False)
    assert result["outcome"] == "failed" and "first install" in result["message"], proc.stdout
    assert "the host was not drained" in result["message"], result["message"]
    proc, result = play("-e", f"version={BROKEN}", check=False)
    assert result["outcome"] == "failed", proc.stdout
    assert any("ended failed" in reason for reason in result["reasons"]), result
    play("-e", "go_service_state=absent")
