"""Run one module's tasks through a real ansible-playbook on localhost and collect the results.

Shared by the integration tests of the AWS modules (pytest puts tests/ on sys.path).
"""

import json
import re
import sys
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
