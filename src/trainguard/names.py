"""Names that become paths: checked as Kubernetes checks object names, joined only under a root.

Job, namespace, replica group, pod and node names end up as directory names under
``$TRAINGUARD_HOME`` and the node-local shared memory. Kubernetes restricts object names to
DNS-1123 subdomains (lowercase alphanumerics, ``-`` and ``.``, starting and ending
alphanumeric), which can never be ``..``, hold a ``/`` or be empty; `safe_join` accepts only
such components and then checks that the joined path still lies under its root, so a name
that slipped past validation (an old store, a hand-edited record, a CLI argument) cannot
write outside it. Pure string work: no file system access, usable from every layer.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from trainguard.errors import UnsafeName

DNS_SUBDOMAIN_RE: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
MAX_SUBDOMAIN_LENGTH: Final = 253


def check_path_name(name: str, *, what: str = "name") -> str:
    """``name`` if it is a DNS-1123 subdomain; raises `UnsafeName` naming ``what`` otherwise."""
    if len(name) > MAX_SUBDOMAIN_LENGTH or not DNS_SUBDOMAIN_RE.match(name):
        raise UnsafeName(
            f"{what} {name!r} is not a DNS-1123 name (lowercase alphanumerics, '-' or '.', "
            f"starting and ending alphanumeric, at most {MAX_SUBDOMAIN_LENGTH})"
        )
    return name


def safe_join(root: Path, *names: str, what: str = "name") -> Path:
    """``root / name / ...`` where every name is a DNS-1123 name and the result stays in root.

    Raises:
        UnsafeName: a component is not a DNS-1123 name, or the path would leave ``root``.
    """
    for name in names:
        check_path_name(name, what=what)
    path = root.joinpath(*names)
    base = os.path.normpath(root)
    if os.path.commonpath([base, os.path.normpath(path)]) != base:
        raise UnsafeName(f"{what} path {path} leaves {root}")
    return path
