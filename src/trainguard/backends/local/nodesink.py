"""Node labels, annotations and events of the local cluster, for the node health agent.

The health agent writes a node's health through a small sink interface (labels, annotations,
events); on the local cluster that is the store, where the controller reads node labels every
step — so a health agent flipping ``node-health-status`` triggers the same remediation as
``trainguard node label`` or HyperPod's health-monitoring agent would.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from trainguard import constants as c
from trainguard.store.base import Store
from trainguard.store.records import EventRecord

COMPONENT = "trainguard-health-agent"


class StoreNodeSink:
    """Reads and writes node status through the local cluster's store."""

    def __init__(self, store: Store, *, component: str = COMPONENT) -> None:
        self.store, self.component = store, component

    def node_labels(self, node: str) -> dict[str, str]:
        """The node's current labels."""
        return dict(self.store.get_node(node).labels)

    def node_annotations(self, node: str) -> dict[str, str]:
        """The node's current annotations."""
        return dict(self.store.get_node(node).annotations)

    def patch_node(
        self,
        node: str,
        *,
        labels: Mapping[str, str | None] | None = None,
        annotations: Mapping[str, str | None] | None = None,
    ) -> None:
        """Set labels/annotations (``None`` deletes a key) in one atomic write."""
        self.store.patch_node(node, labels=labels or {}, annotations=annotations or {})

    def emit_event(self, node: str, *, type: str, reason: str, message: str) -> None:
        """Append an event about the node."""
        event = EventRecord("Node", "", node, type, reason, message, time.time(), self.component)
        self.store.add_events([event])

    def mark_health(self, node: str, health: str, *, why: str) -> None:
        """Set the node's ``node-health-status`` and say so in a ``NodeHealthChanged`` event,
        as the health agent does (`Backend.mark_node_health` on the local cluster)."""
        before = self.node_labels(node).get(c.LABEL_NODE_HEALTH)
        self.patch_node(node, labels={c.LABEL_NODE_HEALTH: health})
        kind = "Normal" if health == c.HEALTH_SCHEDULABLE else "Warning"
        message = f"{c.LABEL_NODE_HEALTH}: {before} -> {health} ({why})"
        self.emit_event(node, type=kind, reason=c.REASON_NODE_HEALTH_CHANGED, message=message)
