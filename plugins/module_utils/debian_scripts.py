# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintainer scripts of a .deb: systemd snippets (as dh_installsystemd writes them) and how they
are combined with the user's preinst/postinst/prerm/postrm (``#DEBHELPER#``, ``#!/bin/sh`` header).

:func:`systemd_snippets` generates, :func:`assemble_script` combines one script,
:func:`maintainer_scripts` gives every script a spec ships.  The text is part of the package
bytes: a changed character changes every checksum.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional

from ansible_collections.goship.deploy.plugins.module_utils.debian_spec import (
    SCRIPT_NAMES,
    PackageSpec,
    PackageValidationError,
    SystemdUnit,
)

__all__ = ['DEBHELPER_TOKEN', 'SCRIPT_HEADER', 'systemd_snippets', 'assemble_script', 'maintainer_scripts']

DEBHELPER_TOKEN = '#DEBHELPER#'
SCRIPT_HEADER = '#!/bin/sh\nset -e\n'

_CONFIGURE_COND = ('[ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || '
                   '[ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]')
_BEGIN = '# Automatically added by goship.deploy.deb_build'
_END = '# End automatically added section'


def _q(units: Iterable[str]) -> str:
    return ' '.join("'%s'" % u for u in units)


def _section(body: List[str]) -> str:
    """One generated block, marked as debhelper marks its own."""
    return '\n'.join([_BEGIN] + body + [_END])


def _postinst_enable(unit: SystemdUnit) -> str:
    """postinst block for one unit: unmask, then enable or only refresh its state."""
    n = "'%s'" % unit.name
    if unit.enable:
        return _section([
            'if %s ; then' % _CONFIGURE_COND,
            '\t# Only removes masks created by deb-systemd-helper on package removal.',
            '\tdeb-systemd-helper unmask %s >/dev/null || true' % n,
            '',
            '\t# was-enabled is true when the unit was never seen, so first installs enable it;',
            '\t# on upgrades an administrator\'s "systemctl disable" is respected.',
            '\tif deb-systemd-helper --quiet was-enabled %s; then' % n,
            '\t\tdeb-systemd-helper enable %s >/dev/null || true' % n,
            '\telse',
            '\t\t# Record new symlinks (removed again on purge), drop obsolete ones.',
            '\t\tdeb-systemd-helper update-state %s >/dev/null || true' % n,
            '\tfi',
            'fi',
        ])
    return _section([
        'if %s ; then' % _CONFIGURE_COND,
        '\tif deb-systemd-helper debian-installed %s; then' % n,
        '\t\tdeb-systemd-helper unmask %s >/dev/null || true' % n,
        '\t\tif deb-systemd-helper --quiet was-enabled %s; then' % n,
        '\t\t\t# Enabled before (by the administrator): refresh its symlinks.',
        '\t\t\tdeb-systemd-helper enable %s >/dev/null || true' % n,
        '\t\tfi',
        '\tfi',
        '\tdeb-systemd-helper update-state %s >/dev/null || true' % n,
        'fi',
    ])


def _stopped_on_upgrade(units: List[SystemdUnit]) -> List[str]:
    """Units prerm stops on upgrade too, so postinst starts them again."""
    return [u.name for u in units if u.start and not u.restart_on_upgrade and u.stop_on_upgrade]


def _postinst_start(units: List[SystemdUnit]) -> str:
    """postinst block for all units: daemon-reload, then (re)start on upgrade or fresh install."""
    restart = [u.name for u in units if u.start and u.restart_on_upgrade]
    try_restart = [u.name for u in units if not u.start and u.restart_on_upgrade]
    start_after_stop = _stopped_on_upgrade(units)
    fresh_start = [u.name for u in units if u.start]
    body = [
        'if %s ; then' % _CONFIGURE_COND,
        '\tif [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then',
        '\t\tsystemctl --system daemon-reload >/dev/null || true',
    ]
    upgrade_cmds = []
    if restart:
        upgrade_cmds.append('deb-systemd-invoke restart %s >/dev/null || true' % _q(restart))
    if try_restart:
        upgrade_cmds.append('deb-systemd-invoke try-restart %s >/dev/null || true' % _q(try_restart))
    if start_after_stop:
        upgrade_cmds.append('deb-systemd-invoke start %s >/dev/null || true' % _q(start_after_stop))
    fresh_cmds = []
    if fresh_start:
        fresh_cmds.append('deb-systemd-invoke start %s >/dev/null || true' % _q(fresh_start))
    if upgrade_cmds or fresh_cmds:
        body.append('\t\tif [ -n "$2" ]; then')
        body += ['\t\t\t' + c for c in upgrade_cmds or [':']]
        body.append('\t\telse')
        body += ['\t\t\t' + c for c in fresh_cmds or [':']]
        body.append('\t\tfi')
    body += ['\tfi', 'fi']
    return _section(body)


def _prerm(units: List[SystemdUnit]) -> str:
    stop_always = _stopped_on_upgrade(units)
    stop_on_remove = [u.name for u in units if u.name not in stop_always]
    body = ['if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then']
    if stop_on_remove:
        body += ['\tif [ "$1" = remove ]; then',
                 '\t\tdeb-systemd-invoke stop %s >/dev/null || true' % _q(stop_on_remove),
                 '\tfi']
    if stop_always:
        body.append('\tdeb-systemd-invoke stop %s >/dev/null || true' % _q(stop_always))
    body.append('fi')
    return _section(body)


def _postrm(names: List[str]) -> str:
    return _section([
        'if [ "$1" = remove ] && [ -d /run/systemd/system ]; then',
        '\tsystemctl --system daemon-reload >/dev/null || true',
        'fi',
        'if [ "$1" = purge ]; then',
        '\tif [ -x /usr/bin/deb-systemd-helper ]; then',
        '\t\tdeb-systemd-helper purge %s >/dev/null || true' % _q(names),
        '\t\tdeb-systemd-helper unmask %s >/dev/null || true' % _q(names),
        '\tfi',
        'fi',
    ])


def systemd_snippets(units: List[SystemdUnit]) -> Dict[str, str]:
    """Generate maintainer-script snippets for ``units`` like dh_installsystemd.

    Returns ``{script name: snippet text}`` for postinst, prerm and postrm
    (empty dict without units).  Semantics, per unit:

    * postinst (configure/abort-*): ``deb-systemd-helper unmask``; with
      ``enable``: ``enable`` if ``was-enabled`` (true on first install, so
      new installs get enabled, and upgrades keep an admin's ``disable``),
      else ``update-state``.  Without ``enable`` only previously enabled
      units are re-enabled.  Then, if ``/run/systemd/system`` exists:
      ``systemctl --system daemon-reload`` and ``deb-systemd-invoke``:
      fresh install -> ``start`` (``start: true``); upgrade (``$2`` set) ->
      ``restart`` (``start`` + ``restart_on_upgrade``), ``try-restart``
      (``restart_on_upgrade`` only), ``start`` (``start`` only: it was
      stopped by prerm), nothing (``stop_on_upgrade: false``: it kept running).
    * prerm: ``deb-systemd-invoke stop`` on ``remove`` for all units; units
      with ``start`` but neither ``restart_on_upgrade`` nor ``stop_on_upgrade: false``
      are also stopped on upgrade (debhelper's ``--no-restart-after-upgrade``).
    * postrm: on ``remove`` ``systemctl --system daemon-reload``; on ``purge``
      ``deb-systemd-helper purge`` + ``unmask``.
    """
    units = sorted(units, key=lambda u: u.name)
    if not units:
        return {}
    postinst = [_postinst_enable(unit) for unit in units] + [_postinst_start(units)]
    return {'postinst': '\n'.join(postinst), 'prerm': _prerm(units), 'postrm': _postrm([u.name for u in units])}


def assemble_script(name: str, user: Optional[str], snippet: Optional[str]) -> Optional[str]:
    """Combine a user-supplied maintainer script with generated snippets.

    ``#DEBHELPER#`` handling (debhelper semantics, plus automatic placement for
    body-only scripts):

    * No user script: ``#!/bin/sh``, ``set -e`` and the snippet (or ``None``
      when there is no snippet either: the script is not shipped).
    * User text starting with ``#!`` is a complete script and is kept as is;
      the ``#DEBHELPER#`` token is replaced with the snippet (or with nothing).
      A complete script without the token while snippets exist is a
      validation error (:func:`debian_validation.validate`), as debhelper would
      silently drop them.
    * Otherwise the text is a script *body*: it gets the ``#!/bin/sh`` +
      ``set -e`` header.  If it contains ``#DEBHELPER#`` the snippet goes
      there; if not, the snippet is placed where debhelper's default
      templates put it: *after* the body for preinst/postinst (the service
      is enabled/started once the user's configuration step has run) and
      *before* the body for prerm/postrm (the service is stopped before the
      user's teardown runs).
    """
    snippet = (snippet or '').rstrip('\n')
    if not user or not user.strip():
        if not snippet:
            return None
        return SCRIPT_HEADER + '\n' + snippet + '\n'
    if user.startswith('#!'):
        if DEBHELPER_TOKEN not in user and snippet:
            raise PackageValidationError(['scripts.%s is a complete script but has no %s line'
                                          % (name, DEBHELPER_TOKEN)])
        text = user.replace(DEBHELPER_TOKEN, snippet)
    elif DEBHELPER_TOKEN in user:
        text = SCRIPT_HEADER + '\n' + user.replace(DEBHELPER_TOKEN, snippet)
    else:
        body = user.strip('\n')
        if not snippet:
            text = SCRIPT_HEADER + '\n' + body
        elif name in ('preinst', 'postinst'):
            text = SCRIPT_HEADER + '\n' + body + '\n\n' + snippet
        else:
            text = SCRIPT_HEADER + '\n' + snippet + '\n\n' + body
    if not text.endswith('\n'):
        text += '\n'
    return text


def maintainer_scripts(spec: PackageSpec) -> Dict[str, str]:
    """``{script name: text}`` of every maintainer script the package ships, in SCRIPT_NAMES order."""
    snippets = systemd_snippets(list(spec.systemd_units))
    out = {}
    for name in SCRIPT_NAMES:
        text = assemble_script(name, spec.scripts.get(name), snippets.get(name))
        if text is not None:
            out[name] = text
    return out
