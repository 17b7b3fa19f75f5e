"""Pods being deleted, and which of them to force-delete because their node is gone.

A graceful delete only sets ``deletionTimestamp``: the moment the pod's grace period ends (the
request's time plus the grace); the pod's kubelet stops the containers and removes the object.
A kubelet that is down (node NotReady, node removed) never does, so the Pod would stay
Terminating forever and hold its name, its node and the job's pod count. Once that moment has
passed, the backend deletes such a pod with ``gracePeriodSeconds=0``, as ``kubectl delete
--force`` does. A pod on a healthy node is left to its kubelet, however long it takes.

Which pods to force is read from the pods themselves each step, never remembered: an operator
that restarts, or a standby that takes over, finds the same pods, and a pod someone else
deleted (the taint manager, a user) on a lost node is forced too once its grace is over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trainguard.backends.kubernetes.nodes import parse_time, pod_node, ready_status

Manifest = dict[str, Any]


def node_lost(node: Manifest | None) -> bool:
    """Whether the node's kubelet cannot finish a deletion (node gone, or not Ready)."""
    return node is None or ready_status(node) in ("False", "Unknown")


def grace_over(pod: Manifest, now: float) -> bool:
    """Whether ``pod`` is being deleted, its grace period has ended at ``now`` (wall-clock
    seconds), and it has not been forced yet (``deletionGracePeriodSeconds`` 0)."""
    meta = pod.get("metadata") or {}
    stamp = meta.get("deletionTimestamp")
    if not stamp or meta.get("deletionGracePeriodSeconds") == 0:
        return False
    return now >= parse_time(stamp)


def to_force(
    pods: Iterable[Manifest], *, nodes: Mapping[str, Manifest], now: float
) -> list[Manifest]:
    """The pods to force-delete now: past their grace period, bound to a lost node.

    Args:
        pods: the pods the backend created (any state).
        nodes: the cluster's nodes by name.
        now: wall-clock seconds (``deletionTimestamp`` is the API server's wall clock).
    """
    return [
        pod
        for pod in pods
        if pod_node(pod) and grace_over(pod, now) and node_lost(nodes.get(pod_node(pod)))
    ]
