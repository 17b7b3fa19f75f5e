"""Watch streams: newline-delimited JSON events from a resourceVersion on, with bookmarks.

Semantics follow the API concepts page: ``resourceVersion`` unset or ``"0"`` starts with a
synthetic ``ADDED`` for every current object and then streams changes; a specific version
streams every change after it, or a single ``ERROR`` event carrying a 410 Expired ``Status``
when that version is older than the kept history. With a selector, an object that stops
matching is reported ``DELETED`` and one that starts matching ``ADDED``. ``BOOKMARK`` events
(when asked for) carry a revision up to which everything has been delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from trainguard.testing.kube.apierrors import ApiError
from trainguard.testing.kube.objects import ObjectStore, WatchEvent
from trainguard.testing.kube.resources import ResourceType
from trainguard.testing.kube.selectors import Matcher

DEFAULT_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True)
class WatchRequest:
    """One watch: what, from where, filtered how, for how long."""

    resource: ResourceType
    namespace: str | None
    matcher: Matcher
    resource_version: str
    bookmarks: bool
    timeout_seconds: float
    bookmark_interval: float
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """How each event's object is shown (``kubectl get -w`` asks for one-row Tables)."""
    send_initial_events: bool = False
    """``sendInitialEvents=true`` (kubectl's WatchList): the current objects, then a BOOKMARK
    annotated ``k8s.io/initial-events-end`` at their revision, then the changes."""


def _line(event_type: str, obj: dict[str, Any], request: WatchRequest | None = None) -> bytes:
    """One event line; objects are shown as the requested resource (a view) and, when the
    request says so, transformed (a Table); bookmarks and errors go out as they are."""
    if request is not None and event_type not in ("BOOKMARK", "ERROR"):
        if request.resource.view is not None:
            obj = request.resource.view.from_storage(obj)
        if request.transform is not None:
            obj = request.transform(obj)
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _in_namespace(obj: dict[str, Any], namespace: str | None) -> bool:
    return namespace is None or obj["metadata"].get("namespace", "") == namespace


def filtered_type(event: WatchEvent, request: WatchRequest) -> str | None:
    """The event type this watcher sees for ``event`` (None: not shown)."""
    if not _in_namespace(event.object, request.namespace):
        return None
    now_matches = request.matcher(event.object)
    if event.type != "MODIFIED" or event.previous is None:
        return event.type if now_matches else None
    before = request.matcher(event.previous)
    if now_matches:
        return "MODIFIED" if before else "ADDED"
    return "DELETED" if before else None


class _Inbox:
    """Events handed over from writer threads to the watch's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.events: deque[WatchEvent] = deque()
        self.wakeup = asyncio.Event()
        self._loop = loop

    def put(self, event: WatchEvent) -> None:
        self.events.append(event)
        self._loop.call_soon_threadsafe(self.wakeup.set)


async def stream_watch(
    store: ObjectStore, request: WatchRequest, stopping: Callable[[], bool]
) -> AsyncIterator[bytes]:
    """The body of a watch response, until ``timeoutSeconds``, a client hang-up, or shutdown."""
    inbox = _Inbox(asyncio.get_running_loop())
    try:
        initial, unsubscribe = _start(store, request, inbox)
    except ApiError as error:
        yield _line("ERROR", error.status())
        return
    try:
        for event_type, obj in initial:
            yield _line(event_type, obj, request)
        if request.send_initial_events:
            yield _initial_events_end(store, request)
        async for line in _follow(store, request, inbox, stopping):
            yield line
    finally:
        unsubscribe()


def _start(
    store: ObjectStore, request: WatchRequest, inbox: _Inbox
) -> tuple[list[tuple[str, dict[str, Any]]], Callable[[], None]]:
    key = request.resource.storage_key()
    if request.resource_version in ("", "0") or request.send_initial_events:
        items, _, unsubscribe = store.snapshot_and_subscribe(key, request.namespace, inbox.put)
        return [("ADDED", obj) for obj in items if request.matcher(obj)], unsubscribe
    try:
        since = int(request.resource_version)
    except ValueError as exc:
        raise ApiError(
            400, "BadRequest", f"invalid resourceVersion {request.resource_version!r}"
        ) from exc
    replay, unsubscribe = store.subscribe(key, inbox.put, since=since)
    shown = [(kind, e.object) for e in replay if (kind := filtered_type(e, request))]
    return shown, unsubscribe


async def _follow(
    store: ObjectStore, request: WatchRequest, inbox: _Inbox, stopping: Callable[[], bool]
) -> AsyncIterator[bytes]:
    deadline = time.monotonic() + request.timeout_seconds
    next_bookmark = time.monotonic() + request.bookmark_interval
    while time.monotonic() < deadline and not stopping():
        wait = min(deadline, next_bookmark if request.bookmarks else deadline) - time.monotonic()
        inbox.wakeup.clear()
        if not inbox.events:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(inbox.wakeup.wait(), timeout=max(min(wait, 0.5), 0))
        while inbox.events:
            event = inbox.events.popleft()
            if kind := filtered_type(event, request):
                yield _line(kind, event.object, request)
        if request.bookmarks and time.monotonic() >= next_bookmark:
            yield _bookmark(store, request, inbox)
            next_bookmark = time.monotonic() + request.bookmark_interval


def _bookmark(store: ObjectStore, request: WatchRequest, inbox: _Inbox) -> bytes:
    """A BOOKMARK at the current revision, sent only with no event of ours still queued."""
    with store.locked():
        revision = store.revision
        pending = list(inbox.events)
        inbox.events.clear()
    lines = [_line(kind, e.object, request) for e in pending if (kind := filtered_type(e, request))]
    bookmark = {
        "kind": request.resource.kind,
        "apiVersion": request.resource.api_version,
        "metadata": {"resourceVersion": str(revision)},
    }
    return b"".join([*lines, _line("BOOKMARK", bookmark)])


def _initial_events_end(store: ObjectStore, request: WatchRequest) -> bytes:
    """The BOOKMARK that ends a WatchList's initial events (client-go waits for it)."""
    bookmark = {
        "kind": request.resource.kind,
        "apiVersion": request.resource.api_version,
        "metadata": {
            "resourceVersion": str(store.revision),
            "annotations": {"k8s.io/initial-events-end": "true"},
        },
    }
    return _line("BOOKMARK", bookmark)
