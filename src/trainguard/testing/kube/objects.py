"""The fake API server's storage: objects, one global revision counter, and watch history.

Like etcd under kube-apiserver, every write takes the next value of one global counter, which
becomes the object's ``metadata.resourceVersion``; a list answers the current counter as its
resourceVersion, and a watch resumes from any revision still in the bounded per-resource
history. Older revisions are gone (compacted) and answer 410 Expired, which is what makes
clients' relist paths testable. Objects are deep-copied in and out, so no caller can change
stored state behind the server's back. API semantics (status split, generation, finalizers)
live in the layers above; this module only stores, versions and notifies.
"""

from __future__ import annotations

import builtins
import copy
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trainguard.testing.kube.apierrors import already_exists, conflict, gone, not_found

ResourceKey = tuple[str, str, str]
"""(group, version, resource)."""
ObjectKey = tuple[str, str, str, str, str]
"""(group, version, resource, namespace, name); namespace is "" for cluster-scoped objects."""

DEFAULT_HISTORY = 1000


@dataclass(frozen=True)
class WatchEvent:
    """One change as a watch reports it; ``object`` is the object at ``revision``."""

    type: str
    object: dict[str, Any]
    revision: int
    previous: dict[str, Any] | None = None
    """The object before a MODIFIED change, so a watch with a selector can report an object
    that stopped matching as DELETED and one that started matching as ADDED."""


Listener = Callable[[WatchEvent], None]


def now_rfc3339() -> str:
    """The API server's timestamp format: UTC, whole seconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = obj.setdefault("metadata", {})
    return meta


def _copy_event(event: WatchEvent) -> WatchEvent:
    previous = None if event.previous is None else copy.deepcopy(event.previous)
    return WatchEvent(event.type, copy.deepcopy(event.object), event.revision, previous)


class ObjectStore:
    """Thread-safe object storage with resourceVersions and per-resource watch history."""

    def __init__(self, *, history_limit: int = DEFAULT_HISTORY) -> None:
        self._lock = threading.RLock()
        self._revision = 0
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
        self._history: dict[ResourceKey, deque[WatchEvent]] = {}
        self._oldest: dict[ResourceKey, int] = {}
        self._listeners: dict[ResourceKey, list[Listener]] = {}
        self._history_limit = history_limit
        self._compacted_to = 0

    @property
    def revision(self) -> int:
        """The newest revision written (a list's resourceVersion)."""
        with self._lock:
            return self._revision

    def get(self, key: ResourceKey, namespace: str, name: str) -> dict[str, Any]:
        """A copy of the stored object; 404 NotFound when absent."""
        with self._lock:
            found = self._objects.get((*key, namespace, name))
            if found is None:
                raise not_found(key[0], key[2], name)
            return copy.deepcopy(found)

    def find(self, key: ResourceKey, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._objects.get((*key, namespace, name))
            return None if found is None else copy.deepcopy(found)

    def list(
        self, key: ResourceKey, namespace: str | None = None
    ) -> tuple[builtins.list[dict[str, Any]], int]:
        """Copies of the objects of one resource (in one namespace, or all) and the revision."""
        with self._lock:
            items = [
                copy.deepcopy(obj)
                for (g, v, r, ns, _), obj in sorted(self._objects.items())
                if (g, v, r) == key and (namespace is None or ns == namespace)
            ]
            return items, self._revision

    def create(self, key: ResourceKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object: uid, resourceVersion and creationTimestamp (``generation`` is the
        write rules' business: not every kind has one)."""
        with self._lock:
            meta = _meta(obj)
            object_key = (*key, meta.get("namespace", ""), meta["name"])
            if object_key in self._objects:
                raise already_exists(key[0], key[2], meta["name"])
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            return self._write(key, object_key, obj, "ADDED")

    def update(
        self, key: ResourceKey, obj: dict[str, Any], *, expected_version: str | None = None
    ) -> dict[str, Any]:
        """Replace a stored object; 409 Conflict when ``expected_version`` is not the stored one."""
        with self._lock:
            meta = _meta(obj)
            object_key = (*key, meta.get("namespace", ""), meta["name"])
            stored = self._objects.get(object_key)
            if stored is None:
                raise not_found(key[0], key[2], meta["name"])
            if expected_version and expected_version != stored["metadata"]["resourceVersion"]:
                raise conflict(key[0], key[2], meta["name"])
            for fixed in ("uid", "creationTimestamp"):
                meta[fixed] = stored["metadata"][fixed]
            return self._write(key, object_key, obj, "MODIFIED", previous=stored)

    def remove(self, key: ResourceKey, namespace: str, name: str) -> dict[str, Any]:
        """Delete an object for good; the DELETED event carries the deletion's revision."""
        with self._lock:
            object_key = (*key, namespace, name)
            stored = self._objects.pop(object_key, None)
            if stored is None:
                raise not_found(key[0], key[2], name)
            self._revision += 1
            stored["metadata"]["resourceVersion"] = str(self._revision)
            self._record(key, WatchEvent("DELETED", stored, self._revision))
            return copy.deepcopy(stored)

    def _write(
        self,
        key: ResourceKey,
        object_key: ObjectKey,
        obj: dict[str, Any],
        kind: str,
        *,
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        self._revision += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self._revision)
        self._objects[object_key] = stored
        self._record(key, WatchEvent(kind, stored, self._revision, previous))
        return copy.deepcopy(stored)

    def _record(self, key: ResourceKey, event: WatchEvent) -> None:
        history = self._history.setdefault(key, deque())
        history.append(event)
        while len(history) > self._history_limit:
            self._oldest[key] = history.popleft().revision
        for listener in list(self._listeners.get(key, [])):
            listener(_copy_event(event))

    def compact(self, revision: int | None = None) -> None:
        """Forget history up to ``revision`` (default: all of it), as etcd compaction does."""
        with self._lock:
            upto = self._revision if revision is None else revision
            for history in self._history.values():
                while history and history[0].revision <= upto:
                    history.popleft()
            self._compacted_to = upto

    def oldest_resumable(self, key: ResourceKey) -> int:
        """The oldest revision a watch on ``key`` may resume from."""
        with self._lock:
            return max(self._oldest.get(key, 0), self._compacted_to)

    def subscribe(
        self, key: ResourceKey, listener: Listener, *, since: int | None
    ) -> tuple[builtins.list[WatchEvent], Callable[[], None]]:
        """Register ``listener`` for future events of ``key``, atomically with the past ones.

        Args:
            key: the resource watched.
            listener: called (under the storage lock, in revision order) for each new event.
            since: replay the recorded events after this revision; None replays nothing.

        Returns:
            The replayed events and a function that unsubscribes.

        Raises:
            ApiError: 410 Expired when ``since`` is older than the history kept.
        """
        with self._lock:
            replay: builtins.list[WatchEvent] = []
            if since is not None:
                if since < self.oldest_resumable(key):
                    raise gone(f"too old resource version: {since} ({self.oldest_resumable(key)})")
                replay = [_copy_event(e) for e in self._history.get(key, ()) if e.revision > since]
            self._listeners.setdefault(key, []).append(listener)

        def unsubscribe() -> None:
            with self._lock:
                listeners = self._listeners.get(key, [])
                if listener in listeners:
                    listeners.remove(listener)

        return replay, unsubscribe

    def locked(self) -> threading.RLock:
        """The storage lock: hold it to read a revision with every event up to it delivered."""
        return self._lock

    def snapshot_and_subscribe(
        self, key: ResourceKey, namespace: str | None, listener: Listener
    ) -> tuple[builtins.list[dict[str, Any]], int, Callable[[], None]]:
        """The current objects and revision, plus a subscription starting right after them."""
        with self._lock:
            items, revision = self.list(key, namespace)
            _, unsubscribe = self.subscribe(key, listener, since=None)
            return items, revision, unsubscribe
