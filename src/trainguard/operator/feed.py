"""Which job a watch event concerns: the bridge from the store's caches to the work queue.

A job's reconcile depends on the job object, its pods (label ``HPJob``) and the nodes its pods
run on (a node turning ``UnschedulablePendingReboot`` or NotReady is a fault of every job with
a pod there). Each event is mapped to the keys of the jobs it concerns; nothing else is done on
the informer's thread, so a slow reconcile never delays the caches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from trainguard import constants as c
from trainguard.store.records import job_key

Listener = Callable[[str, dict[str, Any]], None]


class Cache(Protocol):
    """The part of a list+watch cache (`trainguard.backends.kubernetes.cache.Informer`) used."""

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(type, object)`` on every change."""
        ...

    def items(self) -> list[dict[str, Any]]:
        """Every cached object."""
        ...

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Whether the first list has landed."""
        ...


class CacheFeed:
    """A `trainguard.operator.runner.ChangeFeed` over the job, pod and node caches."""

    def __init__(self, *, jobs: Cache, pods: Cache, nodes: Cache, others: Iterable[Cache] = ()):
        self.jobs, self.pods, self.nodes = jobs, pods, nodes
        self._all = (jobs, pods, nodes, *others)

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(job_key)`` for every job an event concerns."""
        self.jobs.add_listener(lambda _, obj: listener(_job_of_job(obj)))
        self.pods.add_listener(lambda _, obj: _call(listener, _job_of_pod(obj)))
        self.nodes.add_listener(lambda _, obj: _each(listener, self._jobs_on(_name(obj))))

    def synced(self) -> bool:
        """Whether every cache has listed once."""
        return all(cache.wait_synced(0) for cache in self._all)

    def _jobs_on(self, node: str) -> set[str]:
        keys: set[str] = set()
        for pod in self.pods.items():
            if (pod.get("spec") or {}).get("nodeName") == node:
                key = _job_of_pod(pod)
                if key is not None:
                    keys.add(key)
        return keys


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _job_of_job(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return job_key(str(meta.get("namespace") or "default"), str(meta.get("name") or ""))


def _job_of_pod(obj: dict[str, Any]) -> str | None:
    meta = obj.get("metadata") or {}
    job = (meta.get("labels") or {}).get(c.LABEL_JOB)
    return None if not job else job_key(str(meta.get("namespace") or "default"), str(job))


def _call(listener: Callable[[str], None], key: str | None) -> None:
    if key is not None:
        listener(key)


def _each(listener: Callable[[str], None], keys: Iterable[str]) -> None:
    for key in keys:
        listener(key)
