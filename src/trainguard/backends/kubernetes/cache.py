"""A list+watch cache of one resource kind (an informer), so reads never hit the API server.

The store and the operator read jobs, pods, nodes, events, leases and fault requests from
memory; one background thread per kind keeps that memory current the way client-go's
reflector does:

1. **list** everything matching (namespace, label selector) and remember the list's
   resourceVersion;
2. **watch** from that resourceVersion with bookmarks: each event updates the cache and is
   handed to the listeners; a bookmark only moves the resourceVersion on;
3. a watch that ends or drops its connection is **resumed from the last resourceVersion seen**
   (nothing is listed again, nothing missed); errors back off, doubling up to a few seconds;
4. **410 Gone** (the server compacted the history we asked for) **relists**: the new list
   replaces the cache and listeners hear of every difference, deletions included.

Writes by this process are put into the cache at once (`remember`, `forget`), so a store reads
its own writes before the watch reports them; each object keeps the newest resourceVersion seen,
so a late watch event can never roll the cache back to an older copy. A forgotten (deleted)
object leaves a tombstone until the watch confirms the deletion, for the same reason.

Listeners are called on the informer's thread with ``(type, object)`` — ``ADDED``,
``MODIFIED`` or ``DELETED`` — for every change the server reports; the operator feeds a
deduplicating work queue from them. They must be quick and must not raise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from lightkube.core.resource import NamespacedResource

from trainguard.backends.kubernetes.client import ALL_NAMESPACES, KubeClient, Res, ResourceExpired
from trainguard.errors import TrainguardError

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""``(namespace, name)``; the namespace is ``""`` for cluster-scoped objects."""
Listener = Callable[[str, dict[str, Any]], None]


def key_of(obj: dict[str, Any]) -> Key:
    """The cache key of an API object."""
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def _namespaced(res: Res) -> bool:
    return issubclass(res, NamespacedResource)


def version_of(obj: dict[str, Any]) -> int | None:
    """The object's resourceVersion as a number (None when absent or not numeric)."""
    value = (obj.get("metadata") or {}).get("resourceVersion")
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _older(candidate: dict[str, Any], current: dict[str, Any]) -> bool:
    new, old = version_of(candidate), version_of(current)
    return new is not None and old is not None and new < old


class Informer:
    """The cache of one kind, kept by a list+watch thread.

    Args:
        client: the API client (the informer lists and watches through a `KubeClient.fork`
            of it: connections of its own).
        res: the lightkube resource class.
        namespace: one namespace, or None for every namespace (and cluster-scoped kinds).
        labels: a label selector (``{key: value}``, None as value: the key exists).
        watch_timeout: seconds the server keeps one watch open before it is renewed.
        max_backoff: longest pause between two failed attempts to list or watch.
        condition: notified on every change (shared by the informers of `caches`).
    """

    def __init__(
        self,
        client: KubeClient,
        res: Res,
        *,
        namespace: str | None = None,
        labels: dict[str, Any] | None = None,
        watch_timeout: int = 60,
        max_backoff: float = 2.0,
        condition: threading.Condition | None = None,
    ) -> None:
        self.client, self.res, self.labels = client.fork(), res, labels
        self.namespace = namespace or (ALL_NAMESPACES if _namespaced(res) else None)
        self.watch_timeout, self.max_backoff = watch_timeout, max_backoff
        self.name = res._api_info.resource.kind
        self.relists = 0
        """Lists done (the first included): a 410 Gone adds one."""
        self.resumes = 0
        """Watches resumed from the last resourceVersion after a failure."""
        self._objects: dict[Key, dict[str, Any]] = {}
        self._tombstones: dict[Key, int | None] = {}
        self._listeners: list[Listener] = []
        self._changed = condition or threading.Condition()
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._version: str | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the list+watch thread."""
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the thread to stop; it does when its watch next yields (an event, a bookmark,
        or the watch's end) and then closes its connections. Its client is never closed from
        here: closing a socket another thread reads lets the OS hand the same descriptor to
        the next file opened, which that thread would then read as TLS. Waits up to
        ``timeout`` seconds (None: not at all); whether the thread has ended."""
        self._stop.set()
        if timeout is not None and self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Whether the first list has landed (waits up to ``timeout`` seconds for it)."""
        return self._synced.wait(timeout)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(type, object)`` on every change from now on."""
        self._listeners.append(listener)

    # --- reads -----------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The cached object (treat as read-only), or None."""
        with self._changed:
            return self._objects.get((namespace, name))

    def items(self) -> list[dict[str, Any]]:
        """Every cached object (treat as read-only)."""
        with self._changed:
            return list(self._objects.values())

    def wait_for(self, predicate: Callable[[Informer], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds (checked after every change)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    # --- write-through ---------------------------------------------------------------------

    def remember(self, obj: dict[str, Any]) -> None:
        """Put an object this process just wrote (the server's answer) into the cache."""
        key = key_of(obj)
        with self._changed:
            current = self._objects.get(key)
            if current is None or not _older(obj, current):
                self._objects[key] = obj
                self._tombstones.pop(key, None)
            self._changed.notify_all()

    def forget(self, namespace: str, name: str) -> None:
        """Drop an object this process just deleted."""
        with self._changed:
            gone = self._objects.pop((namespace, name), None)
            if gone is not None:
                self._tombstones[(namespace, name)] = version_of(gone)
            self._changed.notify_all()

    # --- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._list_and_watch()
        finally:
            self.client.close()

    def _list_and_watch(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if self._version is None:
                    self._relist()
                self._watch()
                failures = 0
            except ResourceExpired as exc:
                log.info("%s: %s; listing again", self.name, exc)
                self._version = None
            except Exception as exc:  # the thread must outlive any failure: back off, resume
                if self._stop.is_set():
                    return
                failures += 1
                with self._changed:
                    self.resumes += self._version is not None
                    self._changed.notify_all()
                level = logging.INFO if isinstance(exc, TrainguardError) else logging.ERROR
                log.log(level, "%s: watch failed (%s); resuming", self.name, exc)
                self._stop.wait(min(0.05 * 2**failures, self.max_backoff))

    def _relist(self) -> None:
        items, version = self.client.list(self.res, namespace=self.namespace, labels=self.labels)
        listed = {key_of(obj): obj for obj in items}
        changes: list[tuple[str, dict[str, Any]]] = []
        with self._changed:
            for key, obj in listed.items():
                current = self._objects.get(key)
                if current is not None and _older(obj, current):
                    continue
                if current is None or version_of(current) != version_of(obj):
                    changes.append(("ADDED" if current is None else "MODIFIED", obj))
                self._objects[key] = obj
            listed_at = int(version) if version.isdigit() else None
            for key in [k for k in self._objects if k not in listed]:
                newer = listed_at is not None and (version_of(self._objects[key]) or 0) > listed_at
                if not newer:  # written by us after the list was taken: keep it
                    changes.append(("DELETED", self._objects.pop(key)))
            self._tombstones.clear()
            self._version = version
            self.relists += 1
            self._changed.notify_all()
        self._synced.set()
        self._notify(changes)

    def _watch(self) -> None:
        assert self._version is not None
        stream = self.client.watch(
            self.res, namespace=self.namespace, labels=self.labels,
            resource_version=self._version, timeout=self.watch_timeout,
        )  # fmt: skip
        for kind, obj in stream:
            if self._stop.is_set():
                return
            self._version = (obj.get("metadata") or {}).get("resourceVersion") or self._version
            if kind != "BOOKMARK":
                self._apply(kind, obj)

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        with self._changed:
            if kind == "DELETED":
                self._objects.pop(key, None)
                self._tombstones.pop(key, None)
            elif self._stale(key, obj):
                return
            else:
                self._objects[key] = obj
            self._changed.notify_all()
        self._notify([(kind, obj)])

    def _stale(self, key: Key, obj: dict[str, Any]) -> bool:
        """An event older than what we hold, or about an object we deleted since."""
        if key in self._tombstones:
            dead_at, version = self._tombstones[key], version_of(obj)
            return dead_at is None or version is None or version <= dead_at
        current = self._objects.get(key)
        return current is not None and _older(obj, current)

    def _notify(self, changes: list[tuple[str, dict[str, Any]]]) -> None:
        for kind, obj in changes:
            for listener in self._listeners:
                try:
                    listener(kind, obj)
                except Exception:
                    log.exception("%s: a listener failed on %s", self.name, key_of(obj))
