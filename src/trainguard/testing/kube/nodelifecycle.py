"""The control-plane side of node faults: node lifecycle, taint eviction and pod GC.

In a real cluster, when a kubelet stops posting status the node lifecycle controller marks the
node's conditions ``Unknown`` ("Kubelet stopped posting node status.") and taints it
``node.kubernetes.io/unreachable:NoExecute``; the taint manager then evicts every pod that does
not tolerate a ``NoExecute`` taint (after its ``tolerationSeconds``), first adding the
``DisruptionTarget`` condition (reason ``DeletionByTaintManager``); pod GC force-deletes pods
bound to a Node that no longer exists (``DeletionByPodGC``). This controller does the same for
the fake cluster, without the real grace periods (40 s before a node counts as lost, 40 s of
pod GC quarantine): tests call `mark_unreachable` when they make a node NotReady. An evicted pod
on a dead node keeps running as an API object (``Terminating``) until force-deleted, since no
kubelet is left to finish its deletion.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from trainguard.backends.kubernetes.taints import eviction_due
from trainguard.testing.kube.controlloop import run_loop
from trainguard.testing.kube.events import record_event
from trainguard.testing.kube.informer import Informer
from trainguard.testing.kube.predicates import TAINT_NOT_READY, TAINT_UNREACHABLE
from trainguard.testing.kube.restclient import ApiError, KubeClient, nodes_path, pods_path
from trainguard.testing.kube.sandbox import rfc3339_now

log = logging.getLogger(__name__)
JSON = dict[str, Any]
RESYNC_SECONDS = 0.5
COMPONENT = "taint-eviction-controller"


class NodeLifecycleController:
    """`step` evicts and garbage-collects pods; `mark_unreachable`/`mark_reachable` flip nodes."""

    def __init__(
        self,
        client: KubeClient,
        pods: Informer,
        nodes: Informer,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client, self._pods, self._nodes, self._clock = client, pods, nodes, clock
        self._done: set[str] = set()  # uids already evicted or collected
        self.wake = threading.Event()

    def mark_unreachable(self, node_name: str) -> None:
        """Conditions ``Unknown`` and the ``unreachable:NoExecute`` taint, in one update each."""
        node = self._client.get(nodes_path(node_name))
        if node is None:
            return
        now = rfc3339_now()
        node["status"]["conditions"] = [
            {
                **condition,
                "status": "Unknown",
                "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
                "lastTransitionTime": now,
            }
            for condition in node["status"].get("conditions") or []
        ]
        node = self._client.request("PUT", nodes_path(node_name, "status"), body=node)
        taints = [t for t in node["spec"].get("taints") or [] if t.get("key") != TAINT_UNREACHABLE]
        taint = {"key": TAINT_UNREACHABLE, "effect": "NoExecute", "timeAdded": now}
        node["spec"]["taints"] = [*taints, taint]
        self._client.request("PUT", nodes_path(node_name), body=node)

    def mark_reachable(self, node_name: str) -> None:
        """Remove the taints a lost node got; its kubelet posts ``Ready=True`` itself."""
        node = self._client.get(nodes_path(node_name))
        if node is None:
            return
        lost = (TAINT_UNREACHABLE, TAINT_NOT_READY)
        node["spec"]["taints"] = [
            t for t in node["spec"].get("taints") or [] if t["key"] not in lost
        ]
        self._client.request("PUT", nodes_path(node_name), body=node)

    def step(self) -> None:
        nodes = {n["metadata"]["name"]: n for n in self._nodes.items()}
        for pod in self._pods.items():
            node_name = pod.get("spec", {}).get("nodeName")
            uid = pod["metadata"].get("uid", "")
            if not node_name or uid in self._done or pod["metadata"].get("deletionTimestamp"):
                continue
            node = nodes.get(node_name)
            if node is None:
                self._collect(pod)
            elif eviction_due(pod, node.get("spec", {}).get("taints") or [], self._clock()):
                self._evict(pod)

    def run(self, stop: threading.Event) -> None:
        """Step when woken (any pod or node change) and every `RESYNC_SECONDS`."""
        run_loop(self.step, stop=stop, wake=self.wake, resync=RESYNC_SECONDS, name=COMPONENT)

    def _evict(self, pod: JSON) -> None:
        message = "Taint manager: deleting due to NoExecute taint"
        self._disrupt(pod, "DeletionByTaintManager", message)
        self._client.delete(_path(pod), uid=pod["metadata"].get("uid", ""))
        metadata = pod["metadata"]
        record_event(
            self._client,
            pod,
            kind="Normal",
            reason="TaintManagerEviction",
            message=f"Marking for deletion Pod {metadata['namespace']}/{metadata['name']}",
            component=COMPONENT,
            now=rfc3339_now(),
        )

    def _collect(self, pod: JSON) -> None:
        self._disrupt(pod, "DeletionByPodGC", "PodGC: node no longer exists")
        self._client.delete(_path(pod), grace_seconds=0, uid=pod["metadata"].get("uid", ""))

    def _disrupt(self, pod: JSON, reason: str, message: str) -> None:
        """Add ``DisruptionTarget`` to the pod's conditions (retrying a conflict once)."""
        self._done.add(pod["metadata"].get("uid", ""))
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": reason,
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": rfc3339_now(),
        }
        for _attempt in range(3):
            fresh = self._client.get(_path(pod))
            if fresh is None:
                return
            status = dict(fresh.get("status") or {})
            others = [c for c in status.get("conditions") or [] if c["type"] != "DisruptionTarget"]
            status["conditions"] = [*others, condition]
            try:
                self._client.request("PUT", _path(pod, "status"), body={**fresh, "status": status})
                return
            except ApiError as exc:
                if exc.status != 409:
                    raise


def _path(pod: JSON, subresource: str = "") -> str:
    return pods_path(pod["metadata"]["namespace"], pod["metadata"]["name"], subresource)
