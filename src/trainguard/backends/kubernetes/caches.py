"""A cache over a set of namespaces: one `Informer` per namespace, read as one cache.

Why: an operator started with ``--namespace a --namespace b`` may hold RBAC in those
namespaces only (a Role in each, no ClusterRole), so it may not list or watch across all
namespaces, and the API has no watch over a set of namespaces. Like controller-runtime's
multi-namespace cache, each namespace gets an informer of its own; `NamespaceInformers` joins
them: a read or a write-through goes to the informer of the object's namespace (an object of
a namespace not watched is never there), listeners hear every namespace, and one condition
shared by all the informers wakes `wait_for`.

`cache_for` picks the plain `Informer` when one namespace (or all of them) is watched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from trainguard.backends.kubernetes.cache import Informer, Listener, key_of
from trainguard.backends.kubernetes.client import KubeClient, Res


class ObjectCache(Protocol):
    """What the store reads and writes through: an `Informer` or `NamespaceInformers`."""

    name: str

    def start(self) -> None: ...
    def stop(self, timeout: float | None = None) -> bool: ...
    def wait_synced(self, timeout: float | None = None) -> bool: ...
    def add_listener(self, listener: Listener) -> None: ...
    def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def items(self) -> list[dict[str, Any]]: ...
    def wait_for(self, predicate: Callable[[Any], bool], timeout: float) -> bool: ...
    def remember(self, obj: dict[str, Any]) -> None: ...
    def forget(self, namespace: str, name: str) -> None: ...


class NamespaceInformers:
    """Informers of one kind, one per namespace, read as one cache."""

    def __init__(
        self, client: KubeClient, res: Res, namespaces: Sequence[str], *,
        labels: dict[str, Any] | None = None, **options: Any,
    ) -> None:  # fmt: skip
        self._changed = threading.Condition()
        self.parts = {
            namespace: Informer(
                client,
                res,
                namespace=namespace,
                labels=labels,
                condition=self._changed,
                **options,
            )
            for namespace in dict.fromkeys(namespaces)
        }
        self.name = res._api_info.resource.kind

    def start(self) -> None:
        for part in self.parts.values():
            part.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop every informer; waits up to ``timeout`` seconds in all for them to end."""
        for part in self.parts.values():
            part.stop()
        return self._all(lambda part, left: part.stop(left), timeout)

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._all(lambda part, left: part.wait_synced(left), timeout)

    def _all(self, call: Callable[[Informer, float | None], bool], timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for part in self.parts.values():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not call(part, left):
                return False
        return True

    def add_listener(self, listener: Listener) -> None:
        for part in self.parts.values():
            part.add_listener(listener)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        part = self.parts.get(namespace)
        return None if part is None else part.get(namespace, name)

    def items(self) -> list[dict[str, Any]]:
        return [obj for part in self.parts.values() for obj in part.items()]

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds (checked after every change anywhere)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def remember(self, obj: dict[str, Any]) -> None:
        part = self.parts.get(key_of(obj)[0])
        if part is not None:
            part.remember(obj)

    def forget(self, namespace: str, name: str) -> None:
        part = self.parts.get(namespace)
        if part is not None:
            part.forget(namespace, name)


def cache_for(
    client: KubeClient, res: Res, namespaces: Sequence[str], *,
    labels: dict[str, Any] | None = None, **options: Any,
) -> ObjectCache:  # fmt: skip
    """The cache of ``res`` in ``namespaces`` (empty: every namespace)."""
    if len(set(namespaces)) > 1:
        return NamespaceInformers(client, res, namespaces, labels=labels, **options)
    namespace = namespaces[0] if namespaces else None
    return Informer(client, res, namespace=namespace, labels=labels, **options)
