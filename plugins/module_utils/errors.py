# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The root of goship.deploy's errors: a message a person can act on, plus structured details.

Modules end ``main()`` with one ``except GoshipError as exc: module.fail_json(**exc.result())``.
New code raises subclasses of :class:`GoshipError`; older areas move onto it one by one.
"""

from __future__ import annotations

from typing import Any, Dict, Optional


class GoshipError(Exception):
    """An error with a message for people and ``details`` (merged into the module's result)."""

    def __init__(self, message: str, details: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})

    def result(self) -> Dict[str, Any]:
        """Keyword arguments for ``fail_json``: ``msg`` plus the details."""
        out = dict(self.details)
        out['msg'] = self.message
        return out
