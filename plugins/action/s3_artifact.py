# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""goship.deploy.s3_artifact: on the controller (connection local: build uploads, the rollout's
fetch into the controller cache) the module runs inside this worker, without a new process and a
boto3 import, unless the task sets file attributes (mode, owner, ...), which only the module
process applies. Elsewhere, as usual."""

from __future__ import annotations

from ansible_collections.goship.deploy.plugins.modules import s3_artifact
from ansible_collections.goship.deploy.plugins.plugin_utils.local_action import LocalModuleAction


class ActionModule(LocalModuleAction):
    module = s3_artifact
    file_common_args = True
