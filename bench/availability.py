"""Requests lost while a release rolls over the lab's hosts under steady load: ours (deploy.yml:
drain from HAProxy, install, restart, health gate, undrain) against a naive rollout (the shell
floor of bench/rollout.py: install and restart host by host, no drain), in the same run.

    .venv/bin/python bench/availability.py [--rounds 1] [--seconds 20]

Load, from this machine for the whole rollout (at least --seconds): short requests (/work?ms=5,
8 connections, paced) and long ones (/work?ms=3000, 4 connections: the requests a stop would cut
off), through the lab HAProxy's second frontend, which neither retries a refused connection nor
sends it to another server (as many load balancers run), so a request that reaches a host while
it restarts is lost rather than hidden by a retry. Both contenders run with socket activation
off (the service binds its port itself, as most Go services do): the drain alone has to keep
every request. Each round runs both, every run a real upgrade. Prints requests sent and failed
per contender and load; the last line is the headline. A measurement: no asserts. Needs
`make lab-up`; talks only to the lab's hosts and services.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rollout import APP, FLOOR, LAB_ENV, REPO, RELEASES, lab_env, timed, tool_env  # noqa: E402  (bench/ is no package)

PACE = "function delay()\n  return 2\nend\n"   # one short request per connection every 2 ms at most
LOADS = {"short": ("/work?ms=5", 8), "long": ("/work?ms=3000", 4)}


def start_load(url, tmp):
    script = Path(tmp) / "pace.lua"
    script.write_text(PACE)
    procs = {}
    for name, (path, connections) in LOADS.items():
        cmd = ["wrk", "-t1", f"-c{connections}", "-d600s", "--timeout", "10s", url + path]
        if name == "short":
            cmd[1:1] = ["-s", str(script)]
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(3)   # connections up and long requests in flight before anything restarts
    return procs


def stop_load(procs, started, min_seconds):
    remaining = min_seconds - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)
    time.sleep(3.5)   # the last long requests complete (or fail) before wrk stops counting
    counts = {}
    for name, proc in procs.items():
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0]
        sent = re.search(r"(\d+) requests in", out)
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if not sent:
            sys.exit(f"wrk ({name}) printed no count:\n{out}")
        failed = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, errors.groups())) if errors else 0)
        counts[name] = (int(sent.group(1)), failed)
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=1, help="rounds of both contenders (1-5)")
    parser.add_argument("--seconds", type=int, default=20, help="least seconds of load per run (20-120)")
    args = parser.parse_args()
    rounds, seconds = max(1, min(args.rounds, 5)), max(20, min(args.seconds, 120))
    if not LAB_ENV.exists():
        sys.exit("the lab is down: make lab-up")
    lab, env = lab_env(), tool_env()
    if not lab.get("HAPROXY_NORETRY_URL"):
        sys.exit("this lab has no no-retry frontend: make lab-down lab-up")
    url = lab["HAPROXY_NORETRY_URL"]
    for version in RELEASES:
        timed(["ansible-playbook", "playbooks/build.yml", "-e", f"version={version}", "-e", "go_build_run_tests=false",
               "-e", "goship_build_upload=true"], env)
    socket_off = ["-e", "go_service_socket=false"]
    timed(["ansible-playbook", "playbooks/deploy.yml", "-e", f"version={RELEASES[0]}"] + socket_off, env)

    addrs = lab["LAB_HOST_ADDRESSES"].replace(",", " ")
    contenders = {
        "ours": ("deploy.yml: drain, gate, undrain", lambda version, deb: [
            "ansible-playbook", "playbooks/deploy.yml", "-e", f"version={version}"] + socket_off),
        "naive": ("install + restart, no drain", lambda version, deb: ["bash", "-c", FLOOR]),
    }
    results, current = [], 0
    with tempfile.TemporaryDirectory(prefix="bench-availability.") as tmp:
        for rnd in range(rounds):
            for name, (_what, command) in contenders.items():
                current = 1 - current   # every run is a real upgrade
                version = RELEASES[current]
                deb = REPO / "build" / version / f"{APP}_{version}_amd64.deb"
                run_env = dict(env, ADDRS=addrs, KEY=lab["LAB_SSH_KEY"], DEB=str(deb), APP=APP, VERSION=version, TMP=tmp)
                procs = start_load(url, tmp)
                started = time.monotonic()
                try:
                    took, _proc = timed(command(version, deb), run_env)
                finally:
                    counts = stop_load(procs, started, seconds)
                results.append((name, took, counts))
                print(f"round {rnd + 1}  {name:6} -> {version}  {took:6.2f} s  "
                      + "  ".join(f"{load}: {failed} of {sent} failed" for load, (sent, failed) in counts.items()),
                      flush=True)

    print()
    print(f"{'':8}{'':34}{'runs':>5}{'sent':>9}{'failed':>8}{'long sent':>11}{'long failed':>13}")
    total = {}
    for name, (what, _cmd) in contenders.items():
        mine = [counts for n, _t, counts in results if n == name]
        sent = sum(c["short"][0] + c["long"][0] for c in mine)
        failed = sum(c["short"][1] + c["long"][1] for c in mine)
        total[name] = (sent, failed)
        print(f"{name:8}{what:34}{len(mine):5}{sent:9}{failed:8}{sum(c['long'][0] for c in mine):11}"
              f"{sum(c['long'][1] for c in mine):13}")
    print(f"requests failed during a rollout of {len(addrs.split())} hosts (no retries, socket activation off): "
          f"ours {total['ours'][1]} of {total['ours'][0]}, naive {total['naive'][1]} of {total['naive'][0]}")


if __name__ == "__main__":
    main()
