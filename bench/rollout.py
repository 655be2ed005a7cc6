"""A 3-host serial rollout with playbooks/deploy.yml against the least work that does the same,
measured in the same run on the lab's hosts.

    .venv/bin/python bench/rollout.py [--pairs 3]

The floor is a plain shell loop over the same hosts, one at a time, over SSH (one master
connection per host, as Ansible's ControlPersist): copy the .deb, `dpkg -i`, restart the unit,
poll /status until it reports the new version. Ours is `ansible-playbook playbooks/deploy.yml`
(serial 1, HAProxy drain and undrain, health gate with its stability window, ledger and lock,
inventory from the EC2 API). The two alternate, every run a real upgrade (the version flips
between two releases each run). Then the no-op: deploy.yml again with the version already on
every host (changed count must be 0). Prints each run, the medians and the ratio ours/floor;
the last line is the headline. No asserts: a measurement. Needs `make lab-up`; builds the two
releases into S3 first (once). Talks only to the lab's hosts and services.
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
    parser.add_argument("--pairs", type=int, default=3, help="floor/ours pairs (3-10)")
    args = parser.parse_args()
    pairs = max(3, min(args.pairs, 10))
    if not LAB_ENV.exists():
        sys.exit("the lab is down: make lab-up")
    lab, env = lab_env(), tool_env()
    addrs = lab["LAB_HOST_ADDRESSES"].replace(",", " ")
    for version in RELEASES:
        if not (REPO / "build" / version / f"{APP}_{version}_amd64.deb").exists():
            timed(["ansible-playbook", "playbooks/build.yml", "-e", json.dumps(
                {"version": version, "go_build_run_tests": False, "goship_build_upload": True})], env)
    # Start from the first release everywhere, through deploy.yml (so the hosts are set up).
    timed(["ansible-playbook", "playbooks/deploy.yml", "-e", f"version={RELEASES[0]}"], env)

    rows, floor_s, ours_s = [], [], []
    current = 0
    with tempfile.TemporaryDirectory(prefix="bench-rollout.") as tmp:
        for pair in range(pairs):
            for contender in (("floor", "ours") if pair % 2 == 0 else ("ours", "floor")):
                current = 1 - current
                version = RELEASES[current]
                if contender == "floor":
                    deb = REPO / "build" / version / f"{APP}_{version}_amd64.deb"
                    floor_env = dict(env, ADDRS=addrs, KEY=lab["LAB_SSH_KEY"], DEB=str(deb), APP=APP,
                                     VERSION=version, TMP=tmp)
                    seconds, _proc = timed(["bash", "-c", FLOOR], floor_env)
                    floor_s.append(seconds)
                else:
                    seconds, _proc = timed(["ansible-playbook", "playbooks/deploy.yml", "-e", f"version={version}"], env)
                    ours_s.append(seconds)
                rows.append((pair + 1, contender, version, seconds))
                print(f"pair {pair + 1}  {contender:5}  -> {version}  {seconds:6.2f} s", flush=True)
        noop = []
        for _round in range(3):
            seconds, proc = timed(["ansible-playbook", "playbooks/deploy.yml", "-e", f"version={RELEASES[current]}"], env)
            noop.append((seconds, changed_total(proc.stdout)))
            print(f"no-op  ours   =  {RELEASES[current]}  {seconds:6.2f} s  changed={noop[-1][1]}", flush=True)

    floor_m, ours_m = statistics.median(floor_s), statistics.median(ours_s)
    noop_m = statistics.median(s for s, _c in noop)
    hosts = len(addrs.split())
    print()
    print(f"{'':22}{'median s':>10}{'s/host':>9}")
    print(f"{'floor (shell loop)':22}{floor_m:10.2f}{floor_m / hosts:9.2f}")
    print(f"{'ours (deploy.yml)':22}{ours_m:10.2f}{ours_m / hosts:9.2f}")
    print(f"{'ours no-op':22}{noop_m:10.2f}{'':9}  changed={max(c for _s, c in noop)}")
    print(f"rollout of {hosts} hosts, serial 1: ours/floor = {ours_m / floor_m:.2f} "
          f"(ours {ours_m:.1f} s, floor {floor_m:.1f} s, {pairs} pairs); no-op {noop_m:.1f} s")


if __name__ == "__main__":
    main()
