# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run real ansible-playbook plays against this machine for the role tests: one environment, one
local inventory shape (each test case a host, all of them this machine), one runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / 'ansible-playbook'


def ansible_env(**extra):
    """The environment for ansible-playbook from the repository root (this checkout's collection)."""
    env = dict(os.environ)
    env.update({
        'ANSIBLE_CONFIG': str(REPO / 'ansible.cfg'),
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_DEPRECATION_WARNINGS': 'false',
        'ANSIBLE_RETRY_FILES_ENABLED': 'false',
        'PATH': f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    })
    env.update(extra)
    return env


def local_inventory(directory, hosts, python=sys.executable):
    """Write an inventory whose hosts (name -> host variables) are all this machine; returns its path."""
    inventory = {'all': {'hosts': {
        name: {'ansible_connection': 'local', 'ansible_python_interpreter': python, **variables}
        for name, variables in hosts.items()}}}
    path = Path(directory) / 'inventory.yml'
    path.write_text(json.dumps(inventory, indent=1))  # JSON is YAML
    return path


def run_plays(directory, plays, inventory_args, args=(), env=None, timeout=900, name='play.yml'):
    """Write ``plays`` to ``directory/name`` and run them; returns the CompletedProcess (never raises)."""
    path = Path(directory) / name
    path.write_text(json.dumps(plays, indent=1))
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), *inventory_args, *args, str(path)],
        cwd=REPO, env=env if env is not None else ansible_env(), capture_output=True, text=True,
        timeout=timeout, check=False,
    )


def output(proc):
    return f'--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}'
