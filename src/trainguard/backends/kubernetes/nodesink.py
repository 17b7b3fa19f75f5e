"""The node health agent's sink on Kubernetes: Node labels, annotations and Events.

`trainguard.health.HealthAgent` writes a node's health only through a `NodeStatusSink`; on the
local cluster that is the store (`trainguard.backends.local.nodesink`), here it is the API
server. The operator reads the same ``sagemaker.amazonaws.com/node-health-status`` label from
its Node cache (`trainguard.backends.kubernetes.nodes`), so a label this sink flips drives the
same remediation as on the local backend — or as HyperPod's own health-monitoring agent.

Writes are JSON merge patches on ``metadata`` (one request for labels and annotations
together, a ``null`` deletes a key), so the agent never overwrites what other writers put on
the Node and needs only ``get`` and ``patch`` on nodes and ``create`` on events (the chart's
DaemonSet role). Reads go to the API server each time: the agent runs one step every few
seconds and must see an administrator's label change before deciding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from trainguard.backends.kubernetes.client import EVENTS, NODES, KubeClient
from trainguard.backends.kubernetes.events import node_note

COMPONENT = "trainguard-health-agent"


class KubeNodeSink:
    """Reads and writes a Node's health through the Kubernetes API.

    Args:
        client: the API client (its field manager should name the agent: `COMPONENT`).
        component: who the Events say reported them.
        now: wall-clock time for event stamps.
    """

    def __init__(
        self,
        client: KubeClient,
        *,
        component: str = COMPONENT,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.component, self._now = client, component, now

    def node_labels(self, node: str) -> dict[str, str]:
        """The Node's current labels (`NotFoundError` if there is no such Node)."""
        return dict(_metadata(self.client.get(NODES, node)).get("labels") or {})

    def node_annotations(self, node: str) -> dict[str, str]:
        """The Node's current annotations (`NotFoundError` if there is no such Node)."""
        return dict(_metadata(self.client.get(NODES, node)).get("annotations") or {})

    def patch_node(
        self,
        node: str,
        *,
        labels: Mapping[str, str | None] | None = None,
        annotations: Mapping[str, str | None] | None = None,
    ) -> None:
        """Set labels/annotations (``None`` deletes a key) in one merge patch."""
        metadata: dict[str, Any] = {}
        if labels:
            metadata["labels"] = dict(labels)
        if annotations:
            metadata["annotations"] = dict(annotations)
        if metadata:
            self.client.patch(NODES, node, {"metadata": metadata})

    def emit_event(self, node: str, *, type: str, reason: str, message: str) -> None:
        """Create an ``events.k8s.io/v1`` Event regarding the Node."""
        event = node_note(
            node, type=type, reason=reason, note=message, component=self.component,
            now=self._now(),
        )  # fmt: skip
        self.client.create(EVENTS, event)


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj.get("metadata") or {})
