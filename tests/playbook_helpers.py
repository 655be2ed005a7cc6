"""Helpers of the lab tests: run one module's tasks through a real ansible-playbook on localhost and
collect the results; read what each host's /status reports; put load through the lab's HAProxy.

Shared by the integration and fault tests (pytest puts tests/ on sys.path).
"""

import json
import re
import signal
import subprocess
import sys
import time
import uuid


def slug(name):
    """The register name of a task named ``name`` (later tasks can template "{{ slug.key }}")."""
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


def run_module_tasks(run, module, connection, tasks, tmp_path, secrets=(), timeout=300):
    """Run ``tasks`` = [(name, module args, extra task keywords or None), ...] of ``module``.

    ``connection`` goes to module_defaults of the goship.deploy.aws action group. Failed tasks
    do not stop the play (each result says whether it failed). Asserts that the output holds no
    traceback and none of ``secrets``. Returns ({name: result}, combined output).
    """
    body = []
    for name, args, keywords in tasks:
        task = {"name": name, module: args, "register": slug(name), "ignore_errors": True}
        task.update(keywords or {})
        body.append(task)
    results_file = tmp_path / ("results-%s.json" % uuid.uuid4().hex[:6])
    content = "{{ {%s} | to_json }}" % ", ".join("'%s': %s" % (name, slug(name)) for name, _args, _kw in tasks)
    body.append({"name": "save results", "ansible.builtin.copy": {"content": content, "dest": str(results_file)}})
    playbook = [{
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/goship.deploy.aws": connection},
        "tasks": body,
    }]
    path = tmp_path / ("playbook-%s.yml" % uuid.uuid4().hex[:6])
    path.write_text(json.dumps(playbook))
    proc = run("ansible-playbook", "-i", "localhost,", "-c", "local",
               "-e", "ansible_python_interpreter=%s" % sys.executable, str(path), check=False, timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
    for secret in secrets:
        assert secret not in output
    return json.loads(results_file.read_text()), output


def status_versions(run, group="app_hello_svc", port=8080):
    """{host: version its /status reports}, read on each host of ``group`` with ansible's uri."""
    proc = run("ansible", group, "-o", "-m", "ansible.builtin.uri",
               "-a", f"url=http://127.0.0.1:{port}/status return_content=true", check=False)
    versions = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"^(\S+) \| SUCCESS => (\{.*\})$", line)
        if match:
            versions[match.group(1)] = json.loads(match.group(2))["json"]["version"]
    return versions


# Pace each connection: one request every 2 ms at most (wrk's Lua delay() hook, in ms).
WRK_SCRIPT = "function delay()\n  return 2\nend\n"


def hosts(lab):
    return lab["LAB_HOST_NAMES"].split(",")


class Load:
    """wrk through the lab's HAProxy for at least `min_seconds`, stopped with SIGINT (wrk then
    reports). Paced by a Lua delay so the 2 cores keep room for Ansible; /work?ms=5 keeps
    requests in flight while hosts restart."""

    def __init__(self, lab, tmp_path, name, capsys, min_seconds=20):
        self.capsys = capsys
        self.min_seconds = min_seconds
        self.script = tmp_path / "pace.lua"
        self.script.write_text(WRK_SCRIPT)
        self.url = lab["HAPROXY_URL"] + "/work?ms=5"
        self.name = name
        self.proc = None
        self.started = None

    def __enter__(self):
        self.proc = subprocess.Popen(
            ["wrk", "-t1", "-c8", "-d600s", "--timeout", "10s", "-s", str(self.script), self.url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.started = time.monotonic()
        time.sleep(2)  # connections established and traffic flowing before anything restarts
        return self

    def stop(self):
        remaining = self.min_seconds - (time.monotonic() - self.started)
        if remaining > 0:
            time.sleep(remaining)
        self.proc.send_signal(signal.SIGINT)
        out = self.proc.communicate(timeout=30)[0]
        self.result = parse_wrk(out, time.monotonic() - self.started)
        with self.capsys.disabled():
            print(f"\n[load] {self.name}: {self.result}")
        return self.result

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def parse_wrk(out, seconds):
    requests = re.search(r"(\d+) requests in ([\d.]+)(m?s|m)", out)
    assert requests, out
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = sum(int(n) for n in errors.groups()) if errors else 0
    result = {
        "requests": int(requests.group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": socket_errors,
        "seconds": round(seconds, 1),
    }
    result["failed"] = result["non_2xx"] + result["socket_errors"]
    return result
