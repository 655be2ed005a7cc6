# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render one deploy report (the ledger's history entry built by ``playbooks/deploy.yml``).

* :func:`render_html`: one self-contained HTML5 page (inline CSS, no scripts, nothing fetched
  from the network): header, per-host table, per-host phase timeline, index of earlier rollouts.
* :func:`render_markdown`: the same host table as GitHub-flavoured Markdown (AWX, CI summaries).
* :func:`render_table`: the same host table as fixed-width text for a terminal.

Standard library only.  Every key of the report may be missing or empty; nothing here raises on
a malformed report, and every value from it is escaped before it reaches the page.
"""

from __future__ import annotations

from html import escape
from typing import Any, Dict, List, Optional, Tuple

PHASES = ('lock', 'migrate', 'check', 'prepare', 'drain', 'configure', 'install', 'restart',
          'gate', 'rollback', 'undrain', 'prune')
OUTCOMES = ('upgraded', 'restarted', 'unchanged', 'rolled_back', 'failed', 'unreachable', 'skipped')
COLUMNS = ('host', 'instance', 'before \u2192 after', 'outcome', 'duration', 'health')
# outcome -> (text colour, cell background, timeline bar colour)
COLOURS = {
    'upgraded': ('#116329', '#d1f5d9', '#2da44e'),
    'restarted': ('#0b5e4f', '#d3f2ea', '#20a386'),
    'unchanged': ('#3f6b47', '#eaf5ec', '#8cc79a'),
    'rolled_back': ('#7d4e00', '#fff1c2', '#d99e0b'),
    'failed': ('#a40e26', '#ffe0de', '#cf222e'),
    'unreachable': ('#82071e', '#ffd7d5', '#a40e26'),
    'skipped': ('#57606a', '#eceef1', '#afb8c1'),
    '': ('#57606a', '#f6f8fa', '#8c959f'),
}
RESULTS = {'succeeded': ('#ffffff', '#1a7f37'), 'failed': ('#ffffff', '#cf222e'), '': ('#ffffff', '#6e7781')}


def _d(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _s(value: Any) -> str:
    return '' if value is None else str(value)


def _e(value: Any) -> str:
    return escape(_s(value), quote=True)


def _num(value: Any) -> Optional[float]:
    """A float from a number or a numeric string; None when there is none."""
    if isinstance(value, bool) or value is None or value == '':
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _duration(value: Any) -> str:
    number = _num(value)
    return '' if number is None else '%.1f s' % number


def _secs(value: float) -> str:
    return '%.0f s' % value if value >= 10 else '%.1f s' % value if value >= 1 else '%.2g s' % value


def _hosts(report: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [h for h in (report.get('hosts') or []) if isinstance(h, dict)]


def _versions(host: Dict[str, Any]) -> str:
    before, after = _s(host.get('version_before')), _s(host.get('version_after'))
    return '%s \u2192 %s' % (before or '\u2014', after or '\u2014') if before or after else ''


def _phases(host: Dict[str, Any]) -> List[Tuple[str, float]]:
    """(phase, seconds) in rollout order, only those > 0; phases not in PHASES go last."""
    raw = _d(host.get('phases'))
    names = [p for p in PHASES if p in raw] + sorted(_s(p) for p in raw if p not in PHASES)
    pairs = [(name, _num(raw.get(name))) for name in names]
    return [(name, secs) for name, secs in pairs if secs is not None and secs > 0]


def _counts(hosts: List[Dict[str, Any]]) -> str:
    found = [_s(h.get('outcome')) or 'unknown' for h in hosts]
    order = [o for o in OUTCOMES if o in found] + sorted(set(found) - set(OUTCOMES))
    return ', '.join('%d %s' % (found.count(o), o) for o in order)


def _row(host: Dict[str, Any]) -> List[str]:
    return [_s(host.get('host')), _s(host.get('instance_id')), _versions(host),
            _s(host.get('outcome')), _duration(host.get('duration_s')), _s(host.get('health'))]


def _title(report: Dict[str, Any]) -> str:
    return '%s %s to %s: %s' % (_s(report.get('app')) or 'app', _s(report.get('version')) or '?',
                                _s(report.get('env')) or '?', _s(report.get('result')) or 'unknown')


# -- text ----------------------------------------------------------------------------------------
def _flat(text: str, limit: int = 0) -> str:
    text = ' '.join(text.split())
    return text[:limit - 1] + '\u2026' if limit and len(text) > limit else text


def _md(text: str) -> str:
    text = _flat(text)
    for char in '\\`*[]<>|':
        text = text.replace(char, '\\' + char)
    return text


def render_markdown(report: dict) -> str:
    """The rollout as GitHub-flavoured Markdown: heading, one line of when/who, the host table."""
    report = _d(report)
    hosts = _hosts(report)
    lines = ['## ' + _md(_title(report)), '',
             'started %s, finished %s, took %s, by %s' % (
                 _md(_s(report.get('started')) or '?'), _md(_s(report.get('finished')) or '?'),
                 _duration(report.get('duration_s')) or '?', _md(_s(report.get('who')) or '?')), '']
    if report.get('stopped'):
        lines += ['> **stopped:** ' + _md(_s(report['stopped'])), '']
    lines += ['| ' + ' | '.join(COLUMNS) + ' |', '|' + '---|' * len(COLUMNS)]
    lines += ['| ' + ' | '.join(_md(cell) for cell in _row(h)) + ' |' for h in hosts]
    if not hosts:
        lines.append('| *no hosts* |' + ' |' * (len(COLUMNS) - 1))
    notes = [h for h in hosts if _s(h.get('message')).strip()]
    if notes:
        lines.append('')
        lines += ['- **%s**: %s' % (_md(_s(h.get('host')) or '?'), _md(_s(h['message']))) for h in notes]
    return '\n'.join(lines) + '\n'


def render_table(report: dict) -> str:
    """The host table as fixed-width text, then ``result: <result>, <n> hosts: <counts>``."""
    report = _d(report)
    hosts = _hosts(report)
    rows = [list(COLUMNS)] + [[_flat(cell, 60) for cell in _row(h)] for h in hosts]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]

    def fmt(row):
        return '  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()

    lines = [fmt(rows[0]), '  '.join('-' * w for w in widths)] + [fmt(row) for row in rows[1:]]
    summary = 'result: %s, %d host%s' % (_s(report.get('result')) or 'unknown', len(hosts), '' if len(hosts) == 1 else 's')
    lines.append(summary + (': ' + _counts(hosts) if hosts else ''))
    return '\n'.join(lines) + '\n'


# -- HTML ----------------------------------------------------------------------------------------
CSS = """
:root{color-scheme:light;--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--soft:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;padding:28px 36px 40px;background:#fff;color:var(--fg);
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1200px;margin:0 auto}
code,.mono,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
h1{font-size:24px;margin:0 0 10px;display:flex;align-items:center;gap:12px;flex-wrap:wrap}
h1 .to{color:var(--muted);font-weight:400}
h1 .mono{font-size:inherit;font-weight:500}
h2{font-size:16px;margin:30px 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line)}
.result{font-size:13px;font-weight:600;padding:3px 12px;border-radius:999px;text-transform:uppercase;letter-spacing:.04em}
dl.meta{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:4px 16px;margin:0;
  padding:12px 16px;background:var(--soft);border:1px solid var(--line);border-radius:8px}
dl.meta dt{color:var(--muted)}
dl.meta dd{margin:0;overflow-wrap:anywhere}
.stopped{margin:14px 0 0;padding:10px 14px;border-left:4px solid #cf222e;background:#fff5f5;border-radius:4px}
.counts{margin:14px 0 0;display:flex;gap:8px;flex-wrap:wrap}
.chip{padding:2px 10px;border-radius:999px;font-size:12.5px;font-weight:600}
table{border-collapse:collapse;width:100%}
th{text-align:left;font-size:12px;color:var(--muted);font-weight:600;
  text-transform:uppercase;letter-spacing:.03em;padding:6px 10px;border-bottom:2px solid var(--line)}
td{padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:baseline}
td.num,th.num{text-align:right;white-space:nowrap}
td.outcome{font-weight:600;white-space:nowrap}
tr.message td{padding:0 10px 10px;border-bottom:1px solid var(--line)}
tr.host.has-message td{border-bottom:none}
details summary{cursor:pointer;color:var(--muted);font-size:12.5px}
pre{margin:6px 0 0;padding:8px 10px;white-space:pre-wrap;
  overflow-wrap:anywhere;background:#fff8f0;border:1px solid #f0d9b5;border-radius:6px}
.timeline{display:grid;grid-template-columns:minmax(140px,max-content) 1fr 64px;gap:8px 12px;align-items:center}
.timeline .name{font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.timeline .total{text-align:right;color:var(--muted);white-space:nowrap}
.track{height:26px;background:var(--soft);border:1px solid var(--line);border-radius:5px;overflow:hidden;display:flex}
.phase{flex:none;min-width:2px;height:100%;color:#fff;font-size:11.5px;line-height:24px;
  padding:0 5px;white-space:nowrap;overflow:hidden;text-overflow:clip;box-shadow:inset -1px 0 0 rgba(255,255,255,.85)}
.phase:nth-child(even){filter:brightness(1.13)}
.phase[data-phase=rollback]{
  background-image:repeating-linear-gradient(135deg,rgba(0,0,0,.16) 0 6px,transparent 6px 12px)}
.none{color:var(--muted);font-size:12px;padding:0 8px;line-height:24px}
.empty{color:var(--muted)}
footer{margin-top:32px;color:var(--muted);font-size:12px}
"""


def _outcome_style(outcome: str, part: str = 'cell') -> str:
    fg, bg, tint = COLOURS.get(outcome, COLOURS[''])
    return 'background-color:%s' % tint if part == 'bar' else 'color:%s;background:%s' % (fg, bg)


def _result_badge(result: str) -> str:
    fg, bg = RESULTS.get(result, RESULTS[''])
    return '<span class="result" style="color:%s;background:%s">%s</span>' % (fg, bg, _e(result or 'unknown'))


def _header(report: Dict[str, Any]) -> List[str]:
    art = _d(report.get('artifact'))
    sha = _s(art.get('sha256'))
    where = '/'.join(p for p in (_s(art.get('bucket')), _s(art.get('key'))) if p)
    meta = [('who', _e(report.get('who'))), ('run id', '<span class="mono">%s</span>' % _e(report['run_id']) if report.get('run_id') else ''),
            ('started', _e(report.get('started'))), ('finished', _e(report.get('finished'))),
            ('duration', _e(_duration(report.get('duration_s')))),
            ('sha256', '<code title="%s">%s</code>' % (_e(sha), _e(sha[:12])) if sha else ''),
            ('artifact', '<code>%s</code>' % _e(where) if where else ''),
            ('version id', '<code>%s</code>' % _e(art.get('version_id')) if art.get('version_id') else '')]
    out = ['<header>',
           '<h1><span>%s <span class="mono">%s</span></span> <span class="to">to</span> <span>%s</span> %s</h1>' % (
               _e(report.get('app') or 'app'), _e(report.get('version') or '?'), _e(report.get('env') or '?'),
               _result_badge(_s(report.get('result')))),
           '<dl class="meta">']
    out += ['<dt>%s</dt><dd>%s</dd>' % (name, value or '<span class="empty">\u2014</span>') for name, value in meta]
    out.append('</dl>')
    if _s(report.get('stopped')).strip():
        out.append('<p class="stopped"><strong>Stopped:</strong> %s</p>' % _e(report['stopped']))
    hosts = _hosts(report)
    if hosts:
        found = [_s(h.get('outcome')) for h in hosts]
        chips = ['<span class="chip" style="%s">%d %s</span>' % (_outcome_style(o), found.count(o), _e(o or 'unknown'))
                 for o in [o for o in OUTCOMES if o in found] + sorted(set(found) - set(OUTCOMES))]
        out.append('<div class="counts">%s</div>' % ''.join(chips))
    out.append('</header>')
    return out


def _host_table(hosts: List[Dict[str, Any]]) -> List[str]:
    out = ['<h2>Hosts</h2>', '<table id="hosts">',
           '<thead><tr><th>host</th><th>instance</th><th>before \u2192 after</th><th>outcome</th>'
           '<th class="num">duration</th><th>health</th></tr></thead>', '<tbody>']
    for host in hosts:
        name, instance, versions, outcome, duration, health = _row(host)
        message = _s(host.get('message'))
        address = _s(host.get('address'))
        out.append('<tr class="host%s" data-host="%s" data-outcome="%s">' % (
            ' has-message' if message.strip() else '', _e(name), _e(outcome)))
        out.append('<td><strong>%s</strong></td><td class="mono"%s>%s</td><td class="mono">%s</td>'
                   '<td class="outcome" style="%s">%s</td><td class="num">%s</td><td>%s</td></tr>' % (
                       _e(name), ' title="%s"' % _e(address) if address else '', _e(instance), _e(versions),
                       _outcome_style(outcome), _e(outcome), _e(duration), _e(health)))
        if message.strip():
            out.append('<tr class="message" data-host="%s"><td colspan="6"><details%s><summary>message from %s'
                       '</summary><pre>%s</pre></details></td></tr>' % (
                           _e(name), '' if outcome in ('upgraded', 'restarted', 'unchanged') else ' open',
                           _e(name), _e(message)))
    if not hosts:
        out.append('<tr><td colspan="6" class="empty">no hosts in this rollout</td></tr>')
    out += ['</tbody>', '</table>']
    return out


def _timeline(hosts: List[Dict[str, Any]]) -> List[str]:
    phases = [_phases(h) for h in hosts]
    longest = max([sum(secs for _phase, secs in p) for p in phases] + [0.0])
    out = ['<h2>Timeline</h2>', '<div class="timeline" id="timeline">']
    for host, parts in zip(hosts, phases):
        outcome = _s(host.get('outcome'))
        segments = []
        for phase, secs in parts:
            width = secs / longest * 100 if longest else 0.0
            label = '%s %s' % (phase, _secs(secs)) if width >= 11 else phase if width >= 6 else ''
            segments.append('<span class="phase" data-phase="%s" data-seconds="%s" title="%s: %.3f s" '
                            'style="width:%.2f%%;%s">%s</span>' % (
                                _e(phase), '%g' % secs, _e(phase), secs, width, _outcome_style(outcome, 'bar'),
                                _e(label)))
        total = sum(secs for _phase, secs in parts)
        out.append('<div class="name" title="%s">%s</div>' % (_e(outcome), _e(host.get('host'))))
        out.append('<div class="track" data-host="%s" data-outcome="%s">%s</div>' % (
            _e(host.get('host')), _e(outcome), ''.join(segments) or '<span class="none">no phases recorded</span>'))
        out.append('<div class="total">%s</div>' % (_e(_secs(total)) if total else ''))
    out.append('</div>')
    if not hosts:
        out = out[:1] + ['<p class="empty">no hosts in this rollout</p>']
    return out


def _history(history: Optional[list]) -> List[str]:
    runs = [h for h in (history or []) if isinstance(h, dict)]
    out = ['<h2>Earlier rollouts</h2>']
    if not runs:
        return out + ['<p class="empty" id="no-history">no earlier rollouts</p>']
    out += ['<table id="history">', '<thead><tr><th>started</th><th>version</th><th>result</th><th>who</th>'
            '<th class="num">hosts</th></tr></thead>', '<tbody>']
    for run in runs:
        result = _s(run.get('result'))
        hosts = _hosts(run)
        out.append('<tr class="run"><td class="mono">%s</td><td class="mono">%s</td><td>%s</td><td>%s</td>'
                   '<td class="num" title="%s">%d</td></tr>' % (
                       _e(run.get('started')), _e(run.get('version')), _result_badge(result), _e(run.get('who')),
                       _e(_counts(hosts)), len(hosts)))
    return out + ['</tbody>', '</table>']


def render_html(report: dict, history: list | None = None) -> str:
    """One self-contained HTML5 page for the rollout in `report` and the earlier ones in `history`."""
    report = _d(report)
    hosts = _hosts(report)
    body = (_header(report) + _host_table(hosts) + _timeline(hosts) + _history(history)
            + ['<footer>goship.deploy rollout report \u00b7 run <span class="mono">%s</span></footer>'
               % _e(report.get('run_id') or '\u2014')])
    return '\n'.join(['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
                      '<meta name="viewport" content="width=device-width, initial-scale=1">',
                      '<title>%s</title>' % _e(_title(report)), '<style>%s</style>' % CSS, '</head>',
                      '<body>', '<main>'] + body + ['</main>', '</body>', '</html>']) + '\n'
