"""The embedded local backend: simulated nodes as store records, pods as local processes.

The names below are imported on first use, not with the package: the pod shim
(``python -m trainguard.backends.local.shim``) lives here and must start light (see
`trainguard.backends`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainguard.backends.local.backend import LocalBackend
    from trainguard.backends.local.cluster import LocalCluster, LocalClusterConfig

_LAZY = {
    "LocalBackend": "trainguard.backends.local.backend",
    "LocalCluster": "trainguard.backends.local.cluster",
    "LocalClusterConfig": "trainguard.backends.local.cluster",
}

__all__ = ["LocalBackend", "LocalCluster", "LocalClusterConfig"]


def __getattr__(name: str) -> Any:
    """The names of `__all__`, imported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
