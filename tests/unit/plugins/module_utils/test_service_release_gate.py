# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""service_release's health gate against a real HTTP server on loopback: the version as a JSON key
or a plain body, required status fields, a service that comes up late, one that never does, and a
unit that restarts during the stability window. Timeouts are short; nothing here judges speed."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.goship.deploy.plugins.module_utils.service_release import (
    Gate, read_status, run_gate, unmet_requirements)


class Service:
    """What the fake service answers; the handler reads it on every request."""

    def __init__(self):
        self.health = 200
        self.body = json.dumps({'version': '1.214', 'Database': 'Good'})
        self.healthy_after = 0      # requests to /healthz answered 503 first
        self.health_calls = 0


@pytest.fixture()
def service():
    state = Service()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path == '/healthz':
                state.health_calls += 1
                code = 503 if state.health_calls <= state.healthy_after else state.health
                body = b'ok'
            else:
                code, body = 200, state.body.encode()
            self.send_response(code)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = 'http://127.0.0.1:%d' % server.server_address[1]
    state.gate = lambda **kw: Gate(base + '/healthz', base + '/status', **dict(dict(timeout=1.5, interval=0.1, stable=0), **kw))
    yield state
    server.shutdown()
    server.server_close()


def test_passes_when_the_version_and_required_fields_hold(service):
    result = run_gate(service.gate(require={'Database': 'Good'}), '1.214', lambda: 'inv-1')
    assert result.passed and result.reported_version == '1.214'
    assert result.observation == 'healthy, version 1.214'


def test_waits_for_a_service_that_comes_up_late(service):
    service.healthy_after = 3
    result = run_gate(service.gate(), '1.214', lambda: 'inv-1')
    assert result.passed and service.health_calls == 4


def test_wrong_version_fails_naming_what_was_seen(service):
    result = run_gate(service.gate(), '1.215', lambda: 'inv-1')
    assert not result.passed
    assert 'reports version "1.214", not "1.215"' in result.observation and 'after 2 s' in result.observation


def test_a_required_field_that_does_not_hold_fails(service):
    service.body = json.dumps({'version': '1.214', 'Database': 'Bad'})
    result = run_gate(service.gate(require={'Database': 'Good'}), '1.214', lambda: 'inv-1')
    assert not result.passed and 'Database=Good (got "Bad")' in result.observation


def test_plain_text_version_body(service):
    service.body = '1.214\n'
    assert run_gate(service.gate(version_key=''), '1.214', lambda: 'inv-1').passed
    assert not run_gate(service.gate(version_key='version'), '1.214', lambda: 'inv-1').passed


def test_unhealthy_service_fails_with_the_status_code(service):
    service.health = 503
    result = run_gate(service.gate(timeout=0.3), '1.214', lambda: 'inv-1')
    assert not result.passed and '/healthz answered 503' in result.observation


def test_no_service_at_all(service):
    gate = Gate('http://127.0.0.1:9/healthz', 'http://127.0.0.1:9/status', timeout=0.2, interval=0.1, stable=0)
    result = run_gate(gate, '1.214', lambda: 'inv-1')
    assert not result.passed and 'answered -1' in result.observation


def test_a_restart_during_the_stability_window_fails(service):
    invocations = iter(['inv-1', 'inv-2'])
    result = run_gate(service.gate(stable=0.2), '1.214', lambda: next(invocations))
    assert not result.passed and 'restarted during the 0 s stability window' in result.observation


def test_status_parsing():
    assert read_status('{"version": 1.5}', 'version') == ('1.5', {'version': 1.5})
    assert read_status('not json', 'version') == ('', {})
    assert read_status('[1]', 'version') == ('', {})
    assert unmet_requirements({'a': 'x'}, {'a': 'x', 'b': 'y'}) == ['b=y (got null)']
