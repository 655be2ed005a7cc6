"""A 3-host serial rollout with playbooks/deploy.yml against the least work that does the same,
measured in the same run on the lab's hosts.

    .venv/bin/python bench/rollout.py [--rounds 3]

Contenders, all serial 1 over the same hosts and SSH:
- floor: a plain shell loop (one master connection per host, as Ansible's ControlPersist):
  copy the .deb, `dpkg -i`, restart the unit, poll /status until it reports the new version;
- peer: the common Ansible way, bench/peer/ansistrano_style.yml (release directory, copy,
  symlink, apt, restart, poll), inventory from the EC2 API;
- ours: `ansible-playbook playbooks/deploy.yml` (inventory from the EC2 API, ledger and lock,
  staging, HAProxy drain and undrain, health gate) with the gate's stability window at 0 s, so
  it waits no longer than the others do;
- ours-lab: the same with the lab's settings (a 1 s stability window per host).
Each round runs every contender once, each leading a round in turn, every run a real upgrade
(the version flips between two releases each run). Then the no-op: deploy.yml again with the
version already on every host (changed count must be 0). Prints each run, the medians and the
ratios against the floor; the last line is the headline. No asserts: a measurement. Needs `make lab-up`; builds the two
releases and makes sure the lab's S3 has them first. Talks only to the lab's hosts and services.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB_ENV = REPO / "lab" / ".state" / "env"
RELEASES = ("8.0.0", "8.0.1")
APP = "hello-svc"

FLOOR = r"""set -eu
# The least work: for each host in turn copy, install, restart, wait for the new version.
for addr in $ADDRS; do
  ctl="-o ControlMaster=auto -o ControlPath=$TMP/%h.sock -o ControlPersist=30"
  opts="$ctl -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -i $KEY"
  scp -q $opts "$DEB" "admin@$addr:/tmp/release.deb"
  ssh $opts "admin@$addr" "sudo dpkg -i /tmp/release.deb >/dev/null && sudo systemctl restart $APP.service \
    && for i in \$(seq 1 300); do curl -fs http://127.0.0.1:8080/status | grep -q '\"version\":\"$VERSION\"' && exit 0; sleep 0.1; done; exit 1"
done
"""


def lab_env():
    env = {}
    for line in LAB_ENV.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key] = value
    return env


def tool_env():
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PYTHONWARNINGS="ignore",
               ANSIBLE_DEPRECATION_WARNINGS="false", PATH=f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}")
    return env


def timed(cmd, env, timeout=600, **kw):
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return seconds, proc


def changed_total(stdout):
    return sum(int(n) for n in re.findall(r"^\S+\s+: ok=\d+\s+changed=(\d+)", stdout, re.M))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every contender (3-10)")
    args = parser.parse_args()
    rounds = max(3, min(args.rounds, 10))
    if not LAB_ENV.exists():
        sys.exit("the lab is down: make lab-up")
    lab, env = lab_env(), tool_env()
    addrs = lab["LAB_HOST_ADDRESSES"].replace(",", " ")
    for version in RELEASES:   # built once per checkout; uploaded when the lab's S3 lacks it (a new lab)
        timed(["ansible-playbook", "playbooks/build.yml", "-e", json.dumps(
            {"version": version, "go_build_run_tests": False, "goship_build_upload": True})], env)
    # Start from the first release everywhere, through deploy.yml (so the hosts are set up).
    timed(["ansible-playbook", "playbooks/deploy.yml", "-e", f"version={RELEASES[0]}"], env)

    deploy = ["ansible-playbook", "playbooks/deploy.yml"]
    contenders = {
        # name: (what it is, command for a version and its .deb)
        "floor": ("shell loop, no drain or gate", lambda version, deb: ["bash", "-c", FLOOR]),
        "peer": ("ansistrano-style playbook", lambda version, deb: [
            "ansible-playbook", "bench/peer/ansistrano_style.yml", "-e", f"version={version}", "-e", f"deb={deb}"]),
        "ours": ("deploy.yml, stable 0 s", lambda version, deb: deploy + [
            "-e", f"version={version}", "-e", "go_service_health_stable=0"]),
        "ours-lab": ("deploy.yml, lab settings", lambda version, deb: deploy + ["-e", f"version={version}"]),
    }
    names = list(contenders)
    seconds_of = {name: [] for name in names}
    current = 0
    with tempfile.TemporaryDirectory(prefix="bench-rollout.") as tmp:
        for rnd in range(rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]   # each contender leads a round in turn
            for name in order:
                current = 1 - current   # every run is a real upgrade
                version = RELEASES[current]
                deb = REPO / "build" / version / f"{APP}_{version}_amd64.deb"
                run_env = dict(env, ADDRS=addrs, KEY=lab["LAB_SSH_KEY"], DEB=str(deb), APP=APP, VERSION=version, TMP=tmp)
                seconds, _proc = timed(contenders[name][1](version, deb), run_env)
                seconds_of[name].append(seconds)
                print(f"round {rnd + 1}  {name:8}  -> {version}  {seconds:6.2f} s", flush=True)
        noop = []
        for _round in range(3):
            seconds, proc = timed(deploy + ["-e", f"version={RELEASES[current]}"], env)
            noop.append((seconds, changed_total(proc.stdout)))
            print(f"no-op     ours      =  {RELEASES[current]}  {seconds:6.2f} s  changed={noop[-1][1]}", flush=True)

    median = {name: statistics.median(values) for name, values in seconds_of.items()}
    noop_m = statistics.median(s for s, _c in noop)
    hosts = len(addrs.split())
    print()
    print(f"{'':10}{'':30}{'median s':>10}{'s/host':>9}{'/floor':>8}")
    for name in names:
        print(f"{name:10}{contenders[name][0]:30}{median[name]:10.2f}{median[name] / hosts:9.2f}"
              f"{median[name] / median['floor']:8.2f}")
    print(f"{'no-op':10}{'deploy.yml, same version':30}{noop_m:10.2f}{'':17}  changed={max(c for _s, c in noop)}")
    print(f"rollout of {hosts} hosts, serial 1, {rounds} rounds: ours/floor = {median['ours'] / median['floor']:.2f}, "
          f"ours/peer = {median['ours'] / median['peer']:.2f} (lab settings: {median['ours-lab'] / median['floor']:.2f} "
          f"of the floor); no-op {noop_m:.1f} s")


if __name__ == "__main__":
    main()
