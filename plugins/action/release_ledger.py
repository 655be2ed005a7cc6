# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""goship.deploy.release_ledger: on the controller (connection local, as deploy.yml runs it) the
module runs inside this worker, without a new process and a boto3 import; elsewhere, as usual."""

from __future__ import annotations

from ansible_collections.goship.deploy.plugins.modules import release_ledger
from ansible_collections.goship.deploy.plugins.plugin_utils.local_action import LocalModuleAction


class ActionModule(LocalModuleAction):
    module = release_ledger
