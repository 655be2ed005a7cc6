"""The collection builds into a tarball that ansible-galaxy installs, with what a user needs in it."""

import json
import subprocess
import tarfile


def test_collection_builds_and_installs(repo, ansible_env, tmp_path):
    build = subprocess.run(
        ["ansible-galaxy", "collection", "build", "--output-path", str(tmp_path)],
        cwd=repo, env=ansible_env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (tarball,) = tmp_path.glob("goship-deploy-*.tar.gz")

    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    assert manifest["collection_info"]["namespace"] == "goship"
    assert manifest["collection_info"]["name"] == "deploy"
    assert "meta/runtime.yml" in names and "README.md" in names
    # Nothing private or machine-local is shipped.
    for name in names:
        assert not name.startswith((".venv", ".collections", "lab/.state", ".git/", "build/", "reports/")), name
        assert "__pycache__" not in name, name

    dest = tmp_path / "installed"
    install = subprocess.run(
        ["ansible-galaxy", "collection", "install", "--offline", "--no-deps", "--force", "-p", str(dest), str(tarball)],
        cwd=tmp_path, env=ansible_env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    installed = dest / "ansible_collections" / "goship" / "deploy"
    assert (installed / "MANIFEST.json").is_file()
    assert (installed / "meta" / "runtime.yml").is_file()

    # A site repository (examples/site) uses the installed collection: its playbooks, one
    # import_playbook each, resolve and parse from there.
    site = tmp_path / "site"
    subprocess.run(["cp", "-r", str(repo / "examples" / "site"), str(site)], check=True)
    env = dict(ansible_env, ANSIBLE_CONFIG=str(site / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(dest))
    for playbook in ("deploy.yml", "rollback.yml"):
        check = subprocess.run(
            ["ansible-playbook", "-i", "localhost,", "--syntax-check", playbook],
            cwd=site, env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
