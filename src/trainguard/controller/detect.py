"""Fault detection: from pods, agent statuses and node labels to the one fault to remediate.

Pure. The order encodes root-cause priority: a node going bad explains workers crashing on
it and on its peers (collectives fail everywhere once one rank is gone), a lost pod explains its
own silence, and among agents that report faulted workers the earliest report is the root cause
(torch.distributed.elastic's rule for error files). A hang or slowdown that no exited worker
explains is blamed on the culprit rank across all pods (`trainguard.controller.culprit`), not
on the pod that reported first. Agent reasons are mapped to HyperPod's job-level reasons
(``LogHang_<rule>`` -> ``LogStateHanging_<rule>``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from trainguard import constants as c
from trainguard.agent.protocol import AgentState
from trainguard.controller.context import PodView
from trainguard.controller.culprit import stall_fault
from trainguard.controller.state import ActiveFault
from trainguard.store.records import NodeRecord

UNHEALTHY = frozenset({c.HEALTH_PENDING_REBOOT, c.HEALTH_PENDING_REPLACEMENT})
_REASON_PREFIXES = (
    (c.AGENT_REASON_LOG_HANG_PREFIX, c.REASON_LOG_HANGING_PREFIX),
    (c.AGENT_REASON_LOG_SLOW_PREFIX, c.REASON_LOG_SLOW_PREFIX),
    (c.AGENT_REASON_LOG_FAULT_PREFIX, c.REASON_LOG_FAULT_PREFIX),
)
STALL_PREFIXES = (c.AGENT_REASON_LOG_HANG_PREFIX, c.AGENT_REASON_LOG_SLOW_PREFIX)
"""Agent reasons that every rank of a stalled job reports alike: blamed on the culprit."""


def job_reason(agent_reason: str | None) -> str:
    """HyperPod's job-level reason for an agent's fault reason."""
    reason = agent_reason or "WorkerFault"
    for agent_prefix, job_prefix in _REASON_PREFIXES:
        if reason.startswith(agent_prefix):
            return job_prefix + reason[len(agent_prefix) :]
    return reason


def unhealthy_nodes(pods: Sequence[PodView], nodes: Mapping[str, NodeRecord]) -> list[str]:
    """Nodes hosting an active pod whose health label asks for a reboot or replacement, or
    whose pod Kubernetes is evicting (``DisruptionTarget``: a drain, a taint, preemption)."""
    found = []
    for pod in pods:
        if not pod.record.node:
            continue  # not scheduled yet (Kubernetes): no node to blame; the ready timeout waits
        node = nodes.get(pod.record.node)
        health = node.labels.get(c.LABEL_NODE_HEALTH) if node else c.HEALTH_PENDING_REPLACEMENT
        faulty = health in UNHEALTHY or c.POD_INFO_DISRUPTION in pod.record.info
        if pod.active and faulty and pod.record.node not in found:
            found.append(pod.record.node)
    return found


def detect_fault(
    pods: Sequence[PodView], nodes: Mapping[str, NodeRecord], *, now: float
) -> ActiveFault | None:
    """The fault to remediate now, or None when every active pod is healthy."""
    active = [p for p in pods if p.active]
    return (
        _node_fault(active, nodes, now) or _lost_pods(active, now) or _faulted_agents(active, now)
    )


def _node_fault(
    pods: list[PodView], nodes: Mapping[str, NodeRecord], now: float
) -> ActiveFault | None:
    bad = unhealthy_nodes(pods, nodes)
    if not bad:
        return None
    victims = [p for p in pods if p.record.node in bad]
    message = f"Found unhealthy node {', '.join(bad)}"
    return pod_fault(c.REASON_NODE_FAULT, message, victims, now=now, nodes=bad)


def _lost_pods(pods: list[PodView], now: float) -> ActiveFault | None:
    lost = [p for p in pods if not p.alive or p.agent_state is AgentState.SHUTDOWN]
    return lost_pods_fault(lost, now=now) if lost else None


def lost_pods_fault(lost: Sequence[PodView], *, now: float) -> ActiveFault:
    """The fault of ``lost`` pods; one that never became ready makes it a start failure."""
    message = "Pod " + "; ".join(describe_lost(p) for p in lost)
    start_failure = any(p.never_ready for p in lost)
    return pod_fault(c.REASON_POD_LOST, message, lost, now=now, start_failure=start_failure)


def pod_fault(
    reason: str, message: str, pods: Sequence[PodView], *, now: float, replace: bool = True,
    nodes: Sequence[str] | None = None, start_failure: bool = False,
) -> ActiveFault:  # fmt: skip
    """A fault of ``pods`` seen ``now``: their names, node ranks and nodes (or ``nodes``), the
    pods to recreate elsewhere unless ``replace`` is False."""
    return ActiveFault(
        reason=reason,
        message=message,
        detected_at=now,
        observed_at=now,
        pods=[p.name for p in pods],
        ranks=[p.record.node_rank for p in pods if p.record.node_rank is not None],
        nodes=list(nodes) if nodes is not None else [p.record.node for p in pods],
        replace=[p.name for p in pods] if replace else [],
        start_failure=start_failure,
    )


def describe_lost(pod: PodView) -> str:
    """``<pod> on <node> was lost[ before its agent became ready][: <why>]``."""
    when = " before its agent became ready" if pod.never_ready else ""
    why = f": {pod.failure}" if pod.failure else ""
    return f"{pod.name} on {pod.record.node} was lost{when}{why}"


def _faulted_agents(pods: list[PodView], now: float) -> ActiveFault | None:
    faulted = [p for p in pods if p.agent_state is AgentState.FAULTED and p.status is not None]
    if not faulted:
        return None
    faulted.sort(key=lambda p: _detected_at(p, now))
    first = faulted[0]
    assert first.status is not None
    ranks = sorted(
        {
            f.global_rank
            for p in faulted
            if p.status and p.status.trainguard
            for f in p.status.trainguard.failures
        }
    )
    message = f"{first.name}: {first.status.message or first.status.reason or 'worker fault'}"
    reason = job_reason(first.status.reason)
    if not ranks and (first.status.reason or "").startswith(STALL_PREFIXES):
        detected_at = _detected_at(first, now)
        return stall_fault(pods, reason=reason, reported=message, detected_at=detected_at, now=now)
    return ActiveFault(
        reason=reason,
        message=message,
        detected_at=_detected_at(first, now),
        observed_at=now,
        pods=[p.name for p in faulted],
        ranks=ranks,
        nodes=sorted({p.record.node for p in faulted}),
    )


def _detected_at(pod: PodView, now: float) -> float:
    extra = pod.status.trainguard if pod.status else None
    if extra is not None and extra.detected_at is not None:
        return extra.detected_at
    return now
