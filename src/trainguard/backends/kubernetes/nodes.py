"""Kubernetes Nodes (and evicted Pods) as the controller sees them, through the health label.

The controller understands node faults through one thing, HyperPod's health label
``sagemaker.amazonaws.com/node-health-status`` (`trainguard.controller.detect`). On a
Kubernetes cluster a node also goes bad in ways no health agent labels, so this pure mapping
folds them into the label the controller reads (the Node object itself is not changed):

- Ready condition ``False`` or ``Unknown`` (the kubelet is gone or failing, the node's pods
  are lost) -> ``UnschedulablePendingReplacement``;
- ``spec.unschedulable`` (cordoned: no new pods, running ones stay) -> ``Unschedulable``.

A ``NoExecute`` taint is no node fault: whether it costs a pod its place depends on the pod's
tolerations (`trainguard.backends.kubernetes.taints`), so it is judged per pod, as the taint
manager judges it (`taint_disruption`): a pod it would evict is a disrupted pod below.

``UnschedulablePendingReplacement`` is HyperPod's value for an instance that failed and will
not come back by itself; it makes the controller move the node's pods (spare first, then a
restart) exactly as for a node its health agent marked. ``Unschedulable`` is HyperPod's value
for a node that takes no new pods while a deep health check runs; like a cordon it keeps
running pods, and placement leaves the node out. A label that already names a fault
(``UnschedulablePendingReboot``/``...Replacement``) is kept as it is. A node without a Ready
condition (registered, never reported) is not treated as faulty. Every fault found is listed
in ``info["faults"]`` and the label as written on the Node in ``info["healthLabel"]``.

A pod with the ``DisruptionTarget`` condition is being evicted (node drain, taint manager,
preemption), and so is a pod on a node with a ``NoExecute`` taint it does not tolerate (or no
longer: ``tolerationSeconds``), before the taint manager got to it; `disruption_info` names
why, and the store puts that under ``PodRecord.info[constants.POD_INFO_DISRUPTION]``, which
the controller treats as a node fault.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from trainguard import constants as c
from trainguard.backends.kubernetes.taints import describe, evicting_taint
from trainguard.store.records import NodeRecord

Manifest = dict[str, Any]
LOST = frozenset({"NotReady"})
"""Fault kinds that cost the node its pods (see the list above)."""
FAULT_LABELS = frozenset({c.HEALTH_PENDING_REBOOT, c.HEALTH_PENDING_REPLACEMENT})


def node_record(node: Manifest) -> NodeRecord:
    """The `NodeRecord` of a Node object (its wire form, camelCase)."""
    metadata = node.get("metadata") or {}
    labels = dict(metadata.get("labels") or {})
    written = labels.get(c.LABEL_NODE_HEALTH)
    faults = node_faults(node)
    health = effective_health(written, faults)
    if health is not None:
        labels[c.LABEL_NODE_HEALTH] = health
    return NodeRecord(
        name=str(metadata.get("name", "")),
        labels=labels,
        annotations=dict(metadata.get("annotations") or {}),
        created_at=parse_time(metadata.get("creationTimestamp")),
        info={"healthLabel": written, "faults": faults, "ready": ready_status(node)},
    )


def node_faults(node: Manifest) -> list[str]:
    """What Kubernetes reports wrong with ``node``, one string per fault (``Kind: detail``)."""
    faults = []
    ready = ready_status(node)
    if ready in ("False", "Unknown"):
        faults.append(f"NotReady: Ready condition is {ready}")
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        faults.append("Cordoned: spec.unschedulable is true")
    return faults


def effective_health(written: str | None, faults: list[str]) -> str | None:
    """The health label the controller should see, given the written one and the faults."""
    if written in FAULT_LABELS or not faults:
        return written
    if {fault.partition(":")[0] for fault in faults} & LOST:
        return c.HEALTH_PENDING_REPLACEMENT
    if written in (None, c.HEALTH_SCHEDULABLE):  # cordoned
        return c.HEALTH_UNSCHEDULABLE
    return written  # already unschedulable for a reason of its own


def ready_status(node: Manifest) -> str | None:
    """The Ready condition's status (``True``/``False``/``Unknown``), None when absent."""
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status"))
    return None


def pod_disruption(pod: Manifest) -> str | None:
    """Why Kubernetes is evicting ``pod`` (its ``DisruptionTarget`` condition), else None."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            reason = condition.get("reason") or "DisruptionTarget"
            message = condition.get("message")
            return f"{reason}: {message}" if message else str(reason)
    return None


def taint_disruption(pod: Manifest, node: Manifest | None, now: float) -> str | None:
    """Why the taint manager evicts ``pod`` from ``node`` at ``now``, else None."""
    taints = ((node or {}).get("spec") or {}).get("taints") or []
    taint = evicting_taint(pod, taints, now)
    if taint is None:
        return None
    return f"DeletionByTaintManager: taint {describe(taint)} on node {pod_node(pod)}"


def disruption_info(
    pod: Manifest, node: Manifest | None = None, *, now: float | None = None
) -> dict[str, str]:
    """``{POD_INFO_DISRUPTION: why}`` for `PodRecord.info` when ``pod`` is being evicted (by
    its ``DisruptionTarget`` condition, else by a taint of ``node`` it does not tolerate)."""
    why = pod_disruption(pod)
    if why is None and node is not None:
        why = taint_disruption(pod, node, time.time() if now is None else now)
    return {} if why is None else {c.POD_INFO_DISRUPTION: why}


def pod_node(pod: Manifest) -> str:
    """The node the pod is bound to (``spec.nodeName``), empty when unscheduled."""
    return str((pod.get("spec") or {}).get("nodeName") or "")


def parse_time(stamp: object) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp; 0.0 when absent."""
    if not isinstance(stamp, str) or not stamp:
        return 0.0
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
