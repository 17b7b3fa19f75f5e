"""The fake cluster's scheduler: binds pending pods to fake nodes through ``pods/binding``.

It does what kube-scheduler does for the pods this project creates: every pod without
``spec.nodeName`` whose ``schedulerName`` is ours (or absent) is filtered against every node
(`predicates`), bound to the least-loaded fitting one, or left Pending with the condition
``PodScheduled=False``, ``reason: Unschedulable`` and kube-scheduler's message. Any pod or node
change wakes it, so an unschedulable pod is retried when the cluster changes. No preemption,
no scoring plugins beyond spreading, no pod (anti-)affinity.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from trainguard.testing.kube.controlloop import run_loop
from trainguard.testing.kube.events import record_event
from trainguard.testing.kube.informer import Informer
from trainguard.testing.kube.predicates import choose_node
from trainguard.testing.kube.restclient import ApiError, KubeClient, pods_path
from trainguard.testing.kube.sandbox import rfc3339_now

log = logging.getLogger(__name__)
JSON = dict[str, Any]
SCHEDULER_NAME = "default-scheduler"
TERMINAL_PHASES = ("Succeeded", "Failed")
RESYNC_SECONDS = 2.0


def is_pending_for(pod: JSON, scheduler_name: str = SCHEDULER_NAME) -> bool:
    """An unbound, live pod that this scheduler is responsible for."""
    spec, metadata = pod.get("spec", {}), pod.get("metadata", {})
    return (
        not spec.get("nodeName")
        and not metadata.get("deletionTimestamp")
        and (spec.get("schedulerName") or SCHEDULER_NAME) == scheduler_name
        and pod.get("status", {}).get("phase") not in TERMINAL_PHASES
    )


def pods_by_node(pods: Sequence[JSON]) -> dict[str, list[JSON]]:
    """The non-terminal pods bound to each node (what occupies its capacity)."""
    placed: dict[str, list[JSON]] = defaultdict(list)
    for pod in pods:
        node = pod.get("spec", {}).get("nodeName")
        if node and pod.get("status", {}).get("phase") not in TERMINAL_PHASES:
            placed[node].append(pod)
    return placed


class Scheduler:
    """`step` schedules every pending pod once; `run` repeats it when woken."""

    def __init__(self, client: KubeClient, pods: Informer, nodes: Informer) -> None:
        self._client, self._pods, self._nodes = client, pods, nodes
        self.wake = threading.Event()
        self._reported: dict[str, str] = {}  # pod uid -> the message last written

    def step(self) -> int:
        """Bind what fits; returns how many pods were bound."""
        pods, nodes = self._pods.items(), self._nodes.items()
        placed = pods_by_node(pods)
        pending = sorted(
            (p for p in pods if is_pending_for(p)),
            key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]),
        )
        bound = 0
        for pod in pending:
            node, message = choose_node(pod, nodes, placed)
            if node is None:
                self._report_unschedulable(pod, message)
            elif self._bind(pod, node):
                placed[node].append(pod)
                bound += 1
        return bound

    def run(self, stop: threading.Event) -> None:
        """Step when woken (any pod or node change) and every `RESYNC_SECONDS`."""
        run_loop(self.step, stop=stop, wake=self.wake, resync=RESYNC_SECONDS, name="scheduler")

    def _bind(self, pod: JSON, node: str) -> bool:
        metadata = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        path = pods_path(metadata["namespace"], metadata["name"], "binding")
        try:
            self._client.request("POST", path, body=binding)
        except ApiError as exc:
            log.info("binding %s to %s refused: %s", metadata["name"], node, exc)
            return False
        record_event(
            self._client,
            pod,
            kind="Normal",
            reason="Scheduled",
            message=f"Successfully assigned {metadata['namespace']}/{metadata['name']} to {node}",
            component=SCHEDULER_NAME,
            now=rfc3339_now(),
        )
        return True

    def _report_unschedulable(self, pod: JSON, message: str) -> None:
        uid = pod["metadata"].get("uid", "")
        current = _scheduled_condition(pod)
        if current.get("message") == message or self._reported.get(uid) == message:
            return
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": rfc3339_now(),
        }
        status = dict(pod.get("status") or {})
        others = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        status.update(phase=status.get("phase") or "Pending", conditions=[*others, condition])
        path = pods_path(pod["metadata"]["namespace"], pod["metadata"]["name"], "status")
        try:
            self._client.request("PUT", path, body={**pod, "status": status})
        except ApiError as exc:
            log.info("unschedulable status of %s not written: %s", pod["metadata"]["name"], exc)
            return
        self._reported[uid] = message
        record_event(
            self._client,
            pod,
            kind="Warning",
            reason="FailedScheduling",
            message=message,
            component=SCHEDULER_NAME,
            now=rfc3339_now(),
        )


def _scheduled_condition(pod: JSON) -> JSON:
    for condition in pod.get("status", {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled":
            return dict(condition)
    return {}
