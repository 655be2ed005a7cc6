# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils.report_html: the HTML, Markdown and text views of one deploy report.

The last test opens the page in a real headless Chromium (Debian's `chromium`) and compares what
the browser rendered with the report."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from ansible_collections.goship.deploy.plugins.module_utils import report_html

CHROMIUM = '/usr/bin/chromium'
EVIL = 'gate said <script>alert("x")</script> & \'quit\'\nline two'


def host(name, outcome, before='1.213', after='1.214', message='', **phases):
    return {'host': name, 'instance_id': 'i-0%s' % name[-2:], 'address': '172.29.77.%s' % name[-2:],
            'version_before': before, 'version_after': after, 'outcome': outcome, 'duration_s': 2.14,
            'health': 'healthy, version %s' % after, 'message': message,
            'phases': phases or {'check': 0.02, 'prepare': 0.01, 'install': 0.5, 'restart': 0.01, 'gate': 1.03}}


REPORT = {
    'app': 'hello-svc', 'env': 'lab', 'version': '1.214', 'who': 'alice', 'run_id': 'c0ffee00-1234',
    'artifact': {'bucket': 'goship-artifacts', 'key': 'hello-svc/1.214/hello-svc_1.214_amd64.deb',
                 'version_id': 'v1', 'sha256': 'ab' * 32},
    'started': '2026-12-06T04:45:59Z', 'finished': '2026-12-06T04:46:12Z', 'duration_s': 13.2,
    'result': 'failed', 'stopped': '1 of 3 hosts failed',
    'hosts': [host('goship-lab-app-01', 'upgraded'),
              host('goship-lab-app-02', 'rolled_back', after='1.213', message=EVIL,
                   check=0.02, install=0.5, gate=5.0, rollback=2.0),
              host('goship-lab-app-03', 'skipped', after='1.213', phases={})],
}
HISTORY = [dict(REPORT, version='1.213', result='succeeded', started='2026-12-05T10:00:00Z', who='bob'),
           dict(REPORT, version='1.212', result='succeeded', started='2026-12-04T10:00:00Z', hosts=[])]


class Dom(HTMLParser):
    """Rows of #hosts and #history, and the timeline segments, from a (dumped) page."""

    def __init__(self):
        super().__init__()
        self.table, self.row, self.cell = None, None, None
        self.hosts, self.history, self.phases, self.links = [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.links += [v for k, v in attrs if k in ('href', 'src') and v]
        if tag == 'table':
            self.table = a.get('id')
        elif tag == 'tr' and ('host' in a.get('class', '').split() or (self.table == 'history' and 'run' in a.get('class', ''))):
            self.row = {'attrs': a, 'cells': []}
            (self.hosts if self.table == 'hosts' else self.history).append(self.row)
        elif tag == 'td' and self.row is not None:
            self.cell = []
        elif 'phase' in a.get('class', '').split():
            self.phases.append(a)

    def handle_endtag(self, tag):
        if tag == 'td' and self.cell is not None:
            self.row['cells'].append(' '.join(''.join(self.cell).split()))
            self.cell = None
        elif tag == 'tr':
            self.row = None
        elif tag == 'table':
            self.table = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def parse(page):
    dom = Dom()
    dom.feed(page)
    return dom


def test_everything_from_the_report_is_escaped():
    page = report_html.render_html(REPORT, HISTORY)
    assert '<script>' not in page and '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quit&#x27;' in page
    evil = copy.deepcopy(REPORT)
    evil['hosts'][0].update(host='"><b>x', outcome='"><i>', health='<img src=x>')
    evil['app'] = '<h1>'
    page = report_html.render_html(evil)
    assert '"><b>' not in page and '<img' not in page and '<i>' not in page
    assert '<title>&lt;h1&gt; 1.214 to lab: failed</title>' in page


def test_html_shape():
    page = report_html.render_html(REPORT, HISTORY)
    dom = parse(page)
    assert page.startswith('<!DOCTYPE html>') and '<meta charset="utf-8">' in page
    assert '<title>hello-svc 1.214 to lab: failed</title>' in page
    assert [r['attrs']['data-host'] for r in dom.hosts] == [h['host'] for h in REPORT['hosts']]
    for h in REPORT['hosts']:
        assert page.count('data-host="%s" data-outcome' % h['host']) == 2   # table row + timeline track
    assert dom.hosts[0]['cells'] == ['goship-lab-app-01', 'i-001', '1.213 \u2192 1.214', 'upgraded', '2.1 s',
                                     'healthy, version 1.214']
    assert [p['data-phase'] for p in dom.phases] == ['check', 'prepare', 'install', 'restart', 'gate',
                                                     'check', 'install', 'gate', 'rollback']
    widths = [float(re.search(r'width:([\d.]+)%', p['style']).group(1)) for p in dom.phases]
    assert sum(widths[5:]) == pytest.approx(100, abs=0.05) and sum(widths[:5]) < 25
    assert '<code title="%s">%s</code>' % ('ab' * 32, 'ab' * 6) in page and '1 of 3 hosts failed' in page
    assert len(dom.history) == 2 and dom.history[0]['cells'][:2] == ['2026-12-05T10:00:00Z', '1.213']


def test_html_links_to_nothing():
    page = report_html.render_html(REPORT, HISTORY)
    assert parse(page).links == []
    assert not re.search(r'https?:|//[a-z]|@import|url\(|<script|<link', page, re.I)


def test_markdown_and_table():
    md = report_html.render_markdown(REPORT).splitlines()
    assert md[0] == '## hello-svc 1.214 to lab: failed'
    assert md[2] == 'started 2026-12-06T04:45:59Z, finished 2026-12-06T04:46:12Z, took 13.2 s, by alice'
    rows = [line for line in md if line.startswith('| goship-')]
    assert rows[1] == '| goship-lab-app-02 | i-002 | 1.213 \u2192 1.213 | rolled_back | 2.1 s | healthy, version 1.213 |'
    assert len(rows) == 3 and '<script>' not in '\n'.join(md)
    text = report_html.render_table(REPORT).splitlines()
    assert text[0].split() == ['host', 'instance', 'before', '\u2192', 'after', 'outcome', 'duration', 'health']
    assert [line.split()[0] for line in text[2:5]] == [h['host'] for h in REPORT['hosts']]
    assert {line.find(h['outcome']) for line, h in zip(text[2:5], REPORT['hosts'])} == {text[0].index('outcome')}
    assert text[-1] == 'result: failed, 3 hosts: 1 upgraded, 1 rolled_back, 1 skipped'


@pytest.mark.parametrize('report', [{}, {'hosts': []}, {'hosts': [{}]}, {'hosts': [{'phases': {}}], 'artifact': None},
                                    {'hosts': [{'host': 'a', 'duration_s': 'n/a', 'phases': {'gate': 'x', 'odd': 1}}]}])
def test_empty_or_odd_reports_do_not_crash(report):
    page = report_html.render_html(report, None)
    assert 'no earlier rollouts' in page and '</html>' in page
    assert report_html.render_html(report, []) == page
    assert report_html.render_markdown(report).startswith('## ')
    assert report_html.render_table(report).splitlines()[-1].startswith('result: unknown, ')


def chromium(*args, tmp_path):
    if not os.path.exists(CHROMIUM) and not shutil.which('chromium'):
        pytest.fail("chromium is not installed: install Debian's `chromium` package (apt-get install -y chromium)")
    profile = tmp_path / ('profile-%d' % len(list(tmp_path.glob('profile-*'))))
    profile.mkdir()
    cmd = [CHROMIUM if os.path.exists(CHROMIUM) else shutil.which('chromium'), '--headless', '--no-sandbox',
           '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--user-data-dir=%s' % profile, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_chromium_renders_the_report(tmp_path):
    page = tmp_path / 'report.html'
    page.write_text(report_html.render_html(REPORT, HISTORY), encoding='utf-8')
    dom = parse(chromium('--dump-dom', page.as_uri(), tmp_path=tmp_path))
    seen = [(r['attrs']['data-host'], r['cells'][0], r['cells'][3], r['cells'][2]) for r in dom.hosts]
    assert seen == [(h['host'], h['host'], h['outcome'], '%s \u2192 %s' % (h['version_before'], h['version_after']))
                    for h in REPORT['hosts']]
    assert len(dom.history) == len(HISTORY)
    assert len(dom.phases) == 9 and dom.links == []
    shot = tmp_path / 'report.png'
    chromium('--screenshot=%s' % shot, '--window-size=1200,900', page.as_uri(), tmp_path=tmp_path)
    assert shot.exists() and shot.stat().st_size > 5000
    assert shot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
