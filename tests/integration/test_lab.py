"""The lab delivers what every other test relies on: real hosts found through the EC2 API,
reachable by Ansible, and real S3, PostgreSQL, Consul and HAProxy reachable from them."""

import base64
import hashlib
import json
import subprocess

import pytest

pytestmark = pytest.mark.lab


def plain(value):
    """ansible-inventory marks values from plugins as unsafe ({"__ansible_unsafe": v}); unwrap."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def hosts_of(lab):
    return dict(zip(lab["LAB_HOST_NAMES"].split(","), lab["LAB_HOST_ADDRESSES"].split(",")))


def test_inventory_discovers_hosts_from_ec2_api_grouped_by_tag(lab, run):
    out = json.loads(run("ansible-inventory", "-i", "inventories/lab", "--list").stdout)
    expected = sorted(hosts_of(lab))
    assert len(expected) == int(lab["LAB_HOSTS"])
    for group in ("aws_ec2", "app_hello_svc", "env_lab", "role_app"):
        assert sorted(out[group]["hosts"]) == expected, group
    hostvars = plain(out["_meta"]["hostvars"])
    for name, addr in hosts_of(lab).items():
        hv = hostvars[name]
        assert hv["ansible_host"] == addr
        assert hv["ec2_tags"] == {"Name": name, "app": "hello-svc", "env": "lab", "role": "app", "address": addr}
        assert hv["ec2_instance_id"].startswith("i-")
        assert hv["ec2_state"]["name"] == "running"


def test_graph_lists_every_host(lab, run):
    graph = run("ansible-inventory", "-i", "inventories/lab", "--graph").stdout
    for name in hosts_of(lab):
        assert f"--{name}" in graph


def test_ansible_reaches_every_host_with_systemd_booted(lab, run):
    proc = run("ansible", "-i", "inventories/lab", "all", "-o", "-m", "ansible.builtin.command",
               "-a", "systemctl is-system-running", check=False)
    lines = [line for line in proc.stdout.splitlines() if "|" in line]
    assert len(lines) == int(lab["LAB_HOSTS"]), proc.stdout + proc.stderr
    for line in lines:
        assert "CHANGED" in line and ("running" in line or "degraded" in line), line


def test_become_root_and_distinct_machine_ids(lab, run):
    proc = run("ansible", "-i", "inventories/lab", "all", "-o", "-m", "ansible.builtin.command",
               "-a", "cat /etc/machine-id")
    ids = [line.rsplit("(stdout)", 1)[1].strip() for line in proc.stdout.splitlines() if "(stdout)" in line]
    assert len(ids) == int(lab["LAB_HOSTS"]) and len(set(ids)) == len(ids), ids
    whoami = run("ansible", "-i", "inventories/lab", "all", "-o", "-m", "ansible.builtin.command", "-a", "id -u")
    assert whoami.stdout.count("(stdout) 0") == int(lab["LAB_HOSTS"]), whoami.stdout


def test_artifact_bucket_is_versioned_and_keeps_sha256_checksums(lab, s3):
    client = s3
    bucket = lab["S3_ARTIFACT_BUCKET"]
    assert client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    ids = []
    for body in (b"first build", b"second build"):
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        ids.append(client.put_object(Bucket=bucket, Key="tests/lab-probe", Body=body, ChecksumSHA256=digest)["VersionId"])
    assert ids[0] != ids[1]
    old = client.get_object(Bucket=bucket, Key="tests/lab-probe", VersionId=ids[0])["Body"].read()
    assert old == b"first build"
    head = client.head_object(Bucket=bucket, Key="tests/lab-probe", ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]) == hashlib.sha256(b"second build").digest()
    # A wrong checksum is refused by the server, as on AWS.
    with pytest.raises(client.exceptions.ClientError):
        client.put_object(Bucket=bucket, Key="tests/lab-probe", Body=b"x",
                          ChecksumSHA256=base64.b64encode(hashlib.sha256(b"y").digest()).decode())
    for vid in ids:
        client.delete_object(Bucket=bucket, Key="tests/lab-probe", VersionId=vid)


def test_vendor_packages_are_served_from_s3(lab, s3):
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=lab["S3_ARTIFACT_BUCKET"], Prefix="vendor/")["Contents"]]
    assert any(k.startswith("vendor/consul_1.8.7") for k in keys), keys
    assert any(k.startswith("vendor/pipexec_") for k in keys), keys


def on_host(run, host, shell):
    return run("ansible", "-i", "inventories/lab", host, "-o", "-m", "ansible.builtin.shell", "-a", shell, check=False)


def test_hosts_reach_s3_postgres_and_consul(lab, run):
    host = sorted(hosts_of(lab))[0]
    gw = lab["LAB_GATEWAY"]
    s3_ok = on_host(run, host, f"curl -sf {lab['S3_URL']}/healthz -o /dev/null && echo s3-ok")
    assert "s3-ok" in s3_ok.stdout, s3_ok.stdout + s3_ok.stderr
    pg = on_host(run, host, f"PGPASSWORD='{lab['PG_PASSWORD']}' psql -h {gw} -p {lab['PG_PORT']} "
                            f"-U {lab['PG_USER']} -d {lab['PG_DATABASE']} -Atc 'select current_user'")
    assert "hello_svc" in pg.stdout, pg.stdout + pg.stderr
    consul = on_host(run, host, f"curl -sf {lab['CONSUL_HTTP_ADDR']}/v1/status/leader")
    assert f"{gw}:8300" in consul.stdout, consul.stdout + consul.stderr


def test_postgres_rejects_a_wrong_password(lab):
    proc = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", lab["PG_PORT"], "-U", lab["PG_USER"], "-d", lab["PG_DATABASE"], "-c", "select 1"],
        env={"PGPASSWORD": "wrong", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30, check=False,
    )
    assert proc.returncode != 0 and "password authentication failed" in proc.stderr


def test_haproxy_admin_socket_lists_one_server_per_host(lab):
    out = subprocess.run(["socat", "stdio", lab["HAPROXY_SOCKET"]], input="show stat\n",
                         capture_output=True, text=True, timeout=10, check=True).stdout
    servers = [row.split(",")[1] for row in out.splitlines() if row.startswith(lab["HAPROXY_BACKEND"] + ",")]
    expected = [f"app-{i:02d}" for i in range(1, int(lab["LAB_HOSTS"]) + 1)]
    assert sorted(s for s in servers if s not in ("BACKEND", "FRONTEND")) == expected


def test_state_file_is_private(lab, repo):
    mode = (repo / "lab" / ".state" / "env").stat().st_mode & 0o777
    assert mode == 0o600, oct(mode)
