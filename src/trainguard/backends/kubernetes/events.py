"""Events recorded about nodes (``events.k8s.io/v1``, shown by ``kubectl describe node``).

Two writers: the backend, for the node health change that fault injection makes
(`Backend.mark_node_health`), and the node health agent's sink (`nodesink`), for every check
that fails or recovers and every health label it flips. Both are the same kind of Event, so a
human reading ``kubectl describe node`` sees who changed the label and why. Node events live
in the ``default`` namespace, where the kubelet records its own.
"""

from __future__ import annotations

import secrets
from typing import Any

from trainguard import constants as c
from trainguard.backends.kubernetes.store_objects import micro_time

NODE_EVENT_NAMESPACE = "default"


def node_event(node: str, *, health: str, why: str, now: float) -> dict[str, Any]:
    """The ``Normal NodeHealthChanged`` event for ``node`` becoming ``health`` because ``why``."""
    return node_note(
        node,
        type="Normal",
        reason=c.REASON_NODE_HEALTH_CHANGED,
        note=f"{c.LABEL_NODE_HEALTH}={health}: {why}",
        component=c.CONTROLLER_COMPONENT,
        now=now,
    )


def node_note(
    node: str, *, type: str, reason: str, note: str, component: str, now: float
) -> dict[str, Any]:
    """An event about ``node`` reported by ``component`` (``type`` Normal or Warning)."""
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            "name": f"{node}.{secrets.token_hex(8)}",
            "namespace": NODE_EVENT_NAMESPACE,
        },
        "eventTime": micro_time(now),
        "reportingController": f"trainguard.io/{component}",
        "reportingInstance": component,
        "action": "Label",
        "reason": reason,
        "note": note,
        "type": type,
        "regarding": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
