# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one version rule of goship.deploy: a Debian version, given as a string.

Every path needs it: the .deb carries the version, dpkg compares it, S3 keys and the ledger
hold it. Used by deb_build, the CodeDeploy bundle, service_release and (through the
``goship.deploy.version_error`` filter) every role and playbook that takes ``version``.
"""

from __future__ import annotations

import re
from typing import Any, List

VERSION_EXAMPLE = "'1.2.3', '1.2.3-1' or '2:1.0~rc1'"

_EPOCH_RE = re.compile(r'^[0-9]+$')
_UPSTREAM_CHARS_RE = re.compile(r'[^A-Za-z0-9.+~:-]')
_REVISION_CHARS_RE = re.compile(r'[^A-Za-z0-9+.~]')


def version_problems(version: Any) -> List[str]:
    """[] when ``version`` is a valid Debian version string, else one message saying why not.

    A number is refused: YAML reads an unquoted ``1.10`` as the float 1.1, so the version that
    would be deployed is not the one that was written.
    """
    if isinstance(version, (int, float)) and not isinstance(version, bool):
        return ['version %r is a number, not a string: quote it (version: "%s"), since YAML reads an '
                'unquoted 1.10 as 1.1' % (version, version)]
    if not isinstance(version, str) or not version.strip():
        return ['version must not be empty (a valid Debian version looks like %s)' % VERSION_EXAMPLE]
    reasons = []
    if re.search(r'\s', version):
        reasons.append('contains whitespace')
    rest = version
    if ':' in rest:
        epoch, rest = rest.split(':', 1)
        if not _EPOCH_RE.match(epoch):
            reasons.append("epoch %r (before ':') must be a number" % epoch)
    if '-' in rest:
        rest, revision = rest.rsplit('-', 1)
        if not revision:
            reasons.append("revision after the last '-' is empty")
        elif _REVISION_CHARS_RE.search(revision.strip()):
            bad = sorted(set(_REVISION_CHARS_RE.findall(revision.strip())))
            reasons.append('revision %r contains invalid character(s) %s (allowed: A-Z a-z 0-9 + . ~)'
                           % (revision, ' '.join(repr(c) for c in bad)))
    upstream = rest
    if not upstream:
        reasons.append('upstream version is empty')
    else:
        if not upstream[0].isdigit():
            reasons.append('upstream version %r must start with a digit' % upstream)
        bad = set(_UPSTREAM_CHARS_RE.findall(upstream)) - set(' \t\n\r')
        if bad:
            reasons.append('upstream version %r contains invalid character(s) %s '
                           '(allowed: A-Z a-z 0-9 . + ~, plus - with a revision and : with an epoch)'
                           % (upstream, ' '.join(repr(c) for c in sorted(bad))))
    if reasons:
        return ['version %r is invalid: %s (a valid Debian version looks like %s)'
                % (version, ', '.join(reasons), VERSION_EXAMPLE)]
    return []
