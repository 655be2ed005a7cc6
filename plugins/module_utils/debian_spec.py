# -*- coding: utf-8 -*-
# Copyright: goship.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a Debian package is, as goship.deploy describes it: the spec and its vocabulary.

:class:`PackageSpec` (with :class:`FileEntry`, :class:`DirectoryEntry`, :class:`SystemdUnit`),
:class:`BuiltPackage`, the Debian names and defaults the other ``debian_*`` modules share, and
the errors of the .deb path (all :class:`~errors.GoshipError`).  The bottom layer: it imports
no other ``debian_*`` module.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

from ansible_collections.goship.deploy.plugins.module_utils import reproducible
from ansible_collections.goship.deploy.plugins.module_utils.errors import GoshipError

__all__ = [
    'ARCHITECTURES', 'GOARCH_TO_DEBIAN', 'RELATIONSHIP_FIELDS', 'SCRIPT_NAMES', 'PRIORITIES',
    'SYSTEMD_UNIT_DIRS', 'SYSTEMD_UNIT_SUFFIXES',
    'DEFAULT_SECTION', 'DEFAULT_PRIORITY', 'DEFAULT_FILE_MODE', 'DEFAULT_DIR_MODE',
    'FileEntry', 'DirectoryEntry', 'SystemdUnit', 'PackageSpec', 'BuiltPackage',
    'PackageValidationError', 'SourceReadError', 'PackageWriteError', 'ArchiveFormatError',
    'normalize_architecture', 'effective_mtime', 'normpath', 'is_under',
]

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

#: Debian architecture names accepted as-is.
ARCHITECTURES = ('amd64', 'arm64', 'armhf', 'i386', 'ppc64el', 's390x', 'riscv64', 'all')

#: Go's GOARCH names mapped to Debian architecture names.
GOARCH_TO_DEBIAN = {
    'amd64': 'amd64',
    'arm64': 'arm64',
    'arm': 'armhf',
    '386': 'i386',
    'ppc64le': 'ppc64el',
    's390x': 's390x',
    'riscv64': 'riscv64',
}

#: (spec attribute, control field name), in dpkg's conventional order.
RELATIONSHIP_FIELDS = (
    ('pre_depends', 'Pre-Depends'),
    ('depends', 'Depends'),
    ('recommends', 'Recommends'),
    ('suggests', 'Suggests'),
    ('conflicts', 'Conflicts'),
    ('breaks', 'Breaks'),
    ('replaces', 'Replaces'),
    ('provides', 'Provides'),
)

SCRIPT_NAMES = ('preinst', 'postinst', 'prerm', 'postrm')
PRIORITIES = ('required', 'important', 'standard', 'optional', 'extra')
SYSTEMD_UNIT_DIRS = ('/lib/systemd/system', '/usr/lib/systemd/system')
SYSTEMD_UNIT_SUFFIXES = ('.service', '.socket', '.timer', '.path', '.mount',
                         '.automount', '.swap', '.target', '.slice')

DEFAULT_SECTION = 'misc'
DEFAULT_PRIORITY = 'optional'
DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o755


# --------------------------------------------------------------------------
# Spec
# --------------------------------------------------------------------------

@dataclass
class FileEntry:
    """A regular file: read from ``src`` (controller path), installed at ``dest``."""
    src: str
    dest: str
    mode: Union[str, int] = '0644'
    owner: str = 'root'
    group: str = 'root'


@dataclass
class DirectoryEntry:
    """An explicit directory (parents of files are created automatically)."""
    path: str
    mode: Union[str, int] = '0755'
    owner: str = 'root'
    group: str = 'root'


@dataclass
class SystemdUnit:
    """A systemd unit shipped among ``files`` that gets maintainer-script snippets."""
    name: str
    enable: bool = True
    start: bool = True
    restart_on_upgrade: bool = True
    # With restart_on_upgrade false: false leaves the unit running through an upgrade
    # (debhelper's --no-stop-on-upgrade), e.g. a socket that must keep its port open.
    stop_on_upgrade: bool = True


@dataclass
class PackageSpec:
    """Everything a package is built from; :func:`debian_validation.validate` checks it."""
    name: str
    version: str
    maintainer: str
    description: str
    architecture: str = 'amd64'
    section: Optional[str] = None
    priority: Optional[str] = None
    homepage: Optional[str] = None
    pre_depends: List[str] = field(default_factory=list)
    depends: List[str] = field(default_factory=list)
    recommends: List[str] = field(default_factory=list)
    suggests: List[str] = field(default_factory=list)
    conflicts: List[str] = field(default_factory=list)
    breaks: List[str] = field(default_factory=list)
    replaces: List[str] = field(default_factory=list)
    provides: List[str] = field(default_factory=list)
    files: List[FileEntry] = field(default_factory=list)
    directories: List[DirectoryEntry] = field(default_factory=list)
    #: ``None`` = every packaged file under /etc; a list (even empty) overrides.
    conffiles: Optional[List[str]] = None
    #: script name (preinst/postinst/prerm/postrm) -> script text.
    scripts: Dict[str, str] = field(default_factory=dict)
    systemd_units: List[SystemdUnit] = field(default_factory=list)
    #: ``None`` = SOURCE_DATE_EPOCH from the environment, else 0.
    mtime: Optional[int] = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'PackageSpec':
        """Build a spec from plain data (e.g. Ansible module parameters).

        Keys that are ``None`` fall back to the dataclass defaults; nested
        ``files``/``directories``/``systemd_units`` may be dicts.  ``scripts``
        values may be strings or dicts with a ``content`` key.  Unknown keys
        are ignored.
        """
        def items(key, klass):
            out = []
            for item in data.get(key) or []:
                if isinstance(item, klass):
                    out.append(item)
                elif isinstance(item, Mapping):
                    names = klass.__dataclass_fields__  # type: ignore[attr-defined]
                    out.append(klass(**{k: v for k, v in item.items() if k in names and v is not None}))
                else:
                    out.append(item)  # reported by validate()
            return out

        scripts = {}
        for key, value in (data.get('scripts') or {}).items():
            if isinstance(value, Mapping):
                value = value.get('content')
            if value is not None:
                scripts[key] = value

        kwargs = {}
        for key in ('name', 'version', 'maintainer', 'description', 'architecture',
                    'section', 'priority', 'homepage', 'conffiles', 'mtime'):
            if data.get(key) is not None:
                kwargs[key] = data[key]
        for attr, _field in RELATIONSHIP_FIELDS:
            if data.get(attr) is not None:
                kwargs[attr] = list(data[attr])
        kwargs.setdefault('name', '')
        kwargs.setdefault('version', '')
        kwargs.setdefault('maintainer', '')
        kwargs.setdefault('description', '')
        return cls(files=items('files', FileEntry),
                   directories=items('directories', DirectoryEntry),
                   systemd_units=items('systemd_units', SystemdUnit),
                   scripts=scripts, **kwargs)


@dataclass
class BuiltPackage:
    """A built package: the ``.deb`` bytes plus what went into its control archive."""
    data: bytes
    sha256: str
    control_text: str
    control: Dict[str, str]
    contents: List[Dict[str, Any]]
    scripts: Dict[str, str]
    conffiles: List[str]
    md5sums: str
    mtime: int


# --------------------------------------------------------------------------
# Errors: GoshipError for the module's one except clause; the second base is the one
# callers caught before (ValueError / OSError), so they keep working.
# --------------------------------------------------------------------------

class PackageValidationError(GoshipError, ValueError):
    """The spec has problems; ``problems`` lists all of them (also in the details)."""

    def __init__(self, problems: List[str]):
        self.problems = list(problems)
        super().__init__('; '.join(self.problems), {'problems': self.problems})


class SourceReadError(GoshipError, OSError):
    """A source file could not be read (``path`` and ``reason`` set).

    ``what`` names the file in the message: a packaged source file, or e.g. ``scripts.postinst.src``.
    """

    def __init__(self, path: str, reason: str, what: str = 'source file'):
        self.path = path
        self.reason = reason
        super().__init__('cannot read %s %s: %s' % (what, path, reason))


class PackageWriteError(GoshipError, OSError):
    """The package could not be written to ``dest`` (``path`` and ``reason`` set)."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__('cannot write %s: %s' % (path, reason))


class ArchiveFormatError(GoshipError, ValueError):
    """An ``ar`` archive cannot hold a member, or bytes are not a readable ``ar`` archive."""


# --------------------------------------------------------------------------
# Helpers shared by validation and the build
# --------------------------------------------------------------------------

def normalize_architecture(arch: Any) -> Optional[str]:
    """Return the Debian architecture name for a Debian or GOARCH name, else None."""
    if not isinstance(arch, str):
        return None
    if arch in ARCHITECTURES:
        return arch
    return GOARCH_TO_DEBIAN.get(arch)


def effective_mtime(spec: PackageSpec, environ: Optional[Mapping[str, str]] = None) -> int:
    """Explicit ``spec.mtime``, else ``SOURCE_DATE_EPOCH``, else 0 (:func:`reproducible.effective_mtime`).

    Raises :class:`reproducible.ReproducibleError` (a ValueError).
    """
    return reproducible.effective_mtime(spec.mtime, environ)


def is_under(path: str, directory: str) -> bool:
    """True if ``path`` is strictly below ``directory`` (both normalized)."""
    return path.startswith(directory.rstrip('/') + '/')


def normpath(path: str) -> str:
    """posixpath.normpath, but '//x' (kept by POSIX rules) becomes '/x' too."""
    norm = posixpath.normpath(path)
    if norm.startswith('//'):
        norm = '/' + norm.lstrip('/')
    return norm
