"""How the health code talks to nodes: read labels, patch labels/annotations, emit events.

The node health agent and the deep-check runner never know whether a node is a row in the
local SQLite store, a simulated slot, or a Kubernetes ``Node``; they see only this protocol.
The store/backend implements it (local), the Kubernetes backend implements it with a strategic
merge patch on ``Node.metadata`` and a ``core/v1`` Event, and `trainguard.testing.InMemoryNodeSink`
implements it for tests.

Semantics every implementation keeps:

* ``patch_node`` applies all given keys in one write; a ``None`` value deletes the key; keys not
  given are left as they are.
* ``emit_event`` is called only after the patch that caused it succeeded (status first, then
  events), so an event never announces a label that was not written.
* An unknown node raises `trainguard.errors.NotFoundError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

EventType = Literal["Normal", "Warning"]


class NodeStatusSink(Protocol):
    """Read and write a node's health labels, annotations and events."""

    def node_labels(self, node: str) -> dict[str, str]:
        """The node's current labels."""
        ...

    def node_annotations(self, node: str) -> dict[str, str]:
        """The node's current annotations."""
        ...

    def patch_node(
        self,
        node: str,
        *,
        labels: Mapping[str, str | None] = {},
        annotations: Mapping[str, str | None] = {},
    ) -> None:
        """Set (or, for ``None`` values, delete) labels and annotations in one write."""
        ...

    def emit_event(self, node: str, *, type: EventType, reason: str, message: str) -> None:
        """Record an event about ``node`` (``type`` is ``Normal`` or ``Warning``)."""
        ...
