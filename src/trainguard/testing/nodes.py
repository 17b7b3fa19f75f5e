"""An in-memory `trainguard.health.sink.NodeStatusSink` for tests.

It keeps every patch and event in order, so a test can assert not only the final labels but the
sequence a node went through (``InProgress`` before ``Passed``, events after the patch).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from trainguard.errors import NotFoundError
from trainguard.health.sink import EventType


@dataclass(frozen=True)
class RecordedEvent:
    """One event as `InMemoryNodeSink.emit_event` received it."""

    node: str
    type: EventType
    reason: str
    message: str


@dataclass
class _Node:
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


class InMemoryNodeSink:
    """Nodes as dicts; ``history`` lists ``("patch", node, labels, annotations)`` and
    ``("event", node, RecordedEvent)`` entries in call order. Thread-safe."""

    def __init__(self, nodes: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._nodes = {name: _Node(dict(labels)) for name, labels in (nodes or {}).items()}
        self._lock = threading.Lock()
        self.events: list[RecordedEvent] = []
        self.history: list[tuple[object, ...]] = []

    def add_node(self, node: str, labels: Mapping[str, str] | None = None) -> None:
        """Create ``node`` with ``labels``."""
        with self._lock:
            self._nodes[node] = _Node(dict(labels or {}))

    def node_labels(self, node: str) -> dict[str, str]:
        """A copy of the node's labels."""
        with self._lock:
            return dict(self._get(node).labels)

    def node_annotations(self, node: str) -> dict[str, str]:
        """A copy of the node's annotations."""
        with self._lock:
            return dict(self._get(node).annotations)

    def patch_node(
        self,
        node: str,
        *,
        labels: Mapping[str, str | None] = {},
        annotations: Mapping[str, str | None] = {},
    ) -> None:
        """Apply the patch; ``None`` deletes a key."""
        with self._lock:
            target = self._get(node)
            _apply(target.labels, labels)
            _apply(target.annotations, annotations)
            self.history.append(("patch", node, dict(labels), dict(annotations)))

    def emit_event(self, node: str, *, type: EventType, reason: str, message: str) -> None:
        """Record the event."""
        with self._lock:
            self._get(node)
            event = RecordedEvent(node, type, reason, message)
            self.events.append(event)
            self.history.append(("event", node, event))

    def events_for(self, node: str, reason: str | None = None) -> list[RecordedEvent]:
        """Events of ``node`` (optionally only those with ``reason``), in order."""
        with self._lock:
            return [e for e in self.events if e.node == node and reason in (None, e.reason)]

    def label_history(self, node: str, key: str) -> list[str | None]:
        """Every value ``key`` was patched to on ``node``, in order (``None`` = deleted)."""
        with self._lock:
            return [
                entry[2][key]  # type: ignore[index]
                for entry in self.history
                if entry[0] == "patch" and entry[1] == node and key in entry[2]  # type: ignore[operator]
            ]

    def _get(self, node: str) -> _Node:
        try:
            return self._nodes[node]
        except KeyError:
            raise NotFoundError(f"node {node!r} not found") from None


def _apply(target: dict[str, str], patch: Mapping[str, str | None]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
