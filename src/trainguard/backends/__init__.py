"""Backends behind one interface, looked up lazily by name (``local`` is the default).

Nothing is imported here before it is asked for: the local backend's pod shim runs as ``python
-m trainguard.backends.local.shim``, once per pod, and needs none of it (the imports were about
a third of a second of every pod's start on a busy 2-core machine, issue 18).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from trainguard.errors import UsageError

if TYPE_CHECKING:
    from trainguard.backends.base import Backend, PodLaunch

_REGISTRY = {
    "local": "trainguard.backends.local.backend:LocalBackend",
    "kubernetes": "trainguard.backends.kubernetes.backend:KubernetesBackend",
}
_LAZY = {"Backend": "trainguard.backends.base", "PodLaunch": "trainguard.backends.base"}

__all__ = ["Backend", "PodLaunch", "get_backend"]


def get_backend(name: str, **options: Any) -> Backend:
    """Instantiate the backend registered as ``name``."""
    target = _REGISTRY.get(name)
    if target is None:
        raise UsageError(f"unknown backend {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    module, _, attribute = target.partition(":")
    backend: Backend = getattr(importlib.import_module(module), attribute)(**options)
    return backend


def __getattr__(name: str) -> Any:
    """The names of `__all__`, imported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
