"""Backends behind one interface, looked up lazily by name (``local`` is the default)."""

from __future__ import annotations

import importlib
from typing import Any

from trainguard.backends.base import Backend, PodLaunch
from trainguard.errors import UsageError

_REGISTRY = {
    "local": "trainguard.backends.local:LocalBackend",
    "kubernetes": "trainguard.backends.kubernetes.backend:KubernetesBackend",
}

__all__ = ["Backend", "PodLaunch", "get_backend"]


def get_backend(name: str, **options: Any) -> Backend:
    """Instantiate the backend registered as ``name``."""
    target = _REGISTRY.get(name)
    if target is None:
        raise UsageError(f"unknown backend {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    module, _, attribute = target.partition(":")
    backend: Backend = getattr(importlib.import_module(module), attribute)(**options)
    return backend
