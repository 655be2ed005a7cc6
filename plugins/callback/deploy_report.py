# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy report at the end of a rollout: a table on the terminal, and JSON, Markdown and HTML files."""

from __future__ import annotations

DOCUMENTATION = r'''
name: deploy_report
type: aggregate
author: goship.deploy maintainers (@goship)
version_added: 0.2.0
short_description: One report of a goship.deploy rollout across all hosts (table, JSON, Markdown, HTML)
description:
  - At the end of C(goship.deploy.deploy) (and the playbooks built on it) prints one table across all
    hosts (host, instance id, version before and after, outcome, duration, health) and writes the
    report as JSON (the ledger's history entry, for CI), Markdown (for AWX job output and CI
    summaries) and a self-contained HTML page (a per-host timeline of the phases and an index of
    past rollouts from the ledger), then prints where they are.
  - It reads the C(goship_report) fact the playbook sets in its last play, and the ledger history
    the playbook's M(goship.deploy.release_ledger) call returns. Other playbooks are not affected.
requirements:
  - Enable it with C(callbacks_enabled = goship.deploy.deploy_report) in C(ansible.cfg) (or
    E(ANSIBLE_CALLBACKS_ENABLED)).
options:
  report_dir:
    description: Directory for the report files (created when missing).
    type: path
    default: reports
    env:
      - name: GOSHIP_REPORT_DIR
    ini:
      - section: goship_deploy_report
        key: report_dir
  markdown:
    description: Also print the Markdown report to the job output (useful in AWX).
    type: bool
    default: false
    env:
      - name: GOSHIP_REPORT_MARKDOWN
    ini:
      - section: goship_deploy_report
        key: markdown
'''

import json
import os

from ansible.plugins.callback import CallbackBase

from ansible_collections.goship.deploy.plugins.module_utils.file_ops import write_atomic
from ansible_collections.goship.deploy.plugins.module_utils.report_html import render_html, render_markdown, render_table


class CallbackModule(CallbackBase):
    """Collects the rollout's report and writes it out once the playbook ends."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'goship.deploy.deploy_report'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._report = None
        self._history = None

    def v2_runner_on_ok(self, result):
        data = result._result
        report = (data.get('ansible_facts') or {}).get('goship_report')
        if isinstance(report, dict) and report.get('hosts') is not None:
            self._report = report
        if isinstance(data.get('history'), list) and isinstance(data.get('keys'), dict):
            self._history = data['history']

    def v2_playbook_on_stats(self, stats):
        if not self._report:
            return
        report = json.loads(json.dumps(self._report, default=str))
        history = [entry for entry in (self._history or []) if entry.get('run_id') != report.get('run_id')]
        directory = self.get_option('report_dir')
        stem = '%s-%s-%s' % (report.get('app', 'app'), report.get('env', 'env'),
                             str(report.get('started', 'now')).replace(':', '').replace('-', ''))
        self._display.banner('DEPLOY REPORT')
        self._display.display(render_table(report))
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            paths = {}
            for ext, text in (('json', json.dumps(report, indent=2, sort_keys=True) + '\n'),
                              ('md', render_markdown(report)), ('html', render_html(report, history))):
                paths[ext] = os.path.abspath(os.path.join(directory, '%s.%s' % (stem, ext)))
                write_atomic(paths[ext], text.encode('utf-8'), 0o644)
        except OSError as exc:
            self._display.warning('goship.deploy.deploy_report could not write to %s: %s' % (directory, exc))
            return
        if self.get_option('markdown'):
            self._display.display(render_markdown(report))
        self._display.display('report: %s (JSON: %s, Markdown: %s)' % (paths['html'], paths['json'], paths['md']))
