"""Node labels, annotations and events of the local cluster, for the node health agent.

The health agent writes a node's health through a small sink interface (labels, annotations,
events); on the local cluster that is the store, where the controller reads node labels every
step — so a health agent flipping ``node-health-status`` triggers the same remediation as
``trainguard node label`` or HyperPod's health-monitoring agent would.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from trainguard.store.records import EventRecord
from trainguard.store.sqlite import SqliteStore

COMPONENT = "trainguard-health-agent"


class StoreNodeSink:
    """Reads and writes node status through the local cluster's store."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def node_labels(self, node: str) -> dict[str, str]:
        """The node's current labels."""
        return dict(self.store.get_node(node).labels)

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
        event = EventRecord("Node", "", node, type, reason, message, time.time(), COMPONENT)
        self.store.add_events([event])
