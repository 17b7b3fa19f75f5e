"""Fault injection: ``KIND[:key=value,...]`` specs, parsed and carried out for real.

Kinds: ``kill-worker`` (SIGKILL a worker), ``hang-worker`` (SIGSTOP it, so only a log rule can
notice), ``kill-agent`` (SIGKILL a pod's agent), ``node-unhealthy`` (label the node
``UnschedulablePendingReboot``, or the value of ``status=``, as HyperPod's resiliency test
does). Keys: ``rank`` (global worker rank; default 0), ``node`` (node name; default the node of
``rank``), ``after`` (seconds after the job first ran; default 0).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from trainguard import constants as c
from trainguard.backends.base import Backend
from trainguard.controller.context import JobContext, PodView
from trainguard.errors import UsageError
from trainguard.store.sqlite import SqliteStore

KINDS = ("kill-worker", "hang-worker", "kill-agent", "node-unhealthy")
KEYS = ("rank", "node", "after", "status")
NODE_STATUSES = (c.HEALTH_PENDING_REBOOT, c.HEALTH_PENDING_REPLACEMENT)


@dataclass(frozen=True)
class FaultSpec:
    """A parsed fault specification."""

    kind: str
    rank: int = 0
    node: str | None = None
    after: float = 0.0
    status: str = c.HEALTH_PENDING_REBOOT

    def render(self) -> str:
        """Back to ``KIND:key=value`` form."""
        parts = [f"rank={self.rank}", f"after={self.after:g}"]
        if self.node:
            parts.append(f"node={self.node}")
        if self.kind == "node-unhealthy":
            parts.append(f"status={self.status}")
        return f"{self.kind}:{','.join(parts)}"


def parse_fault(text: str) -> FaultSpec:
    """Parse ``KIND[:key=value,...]``; `UsageError` names what is wrong."""
    kind, _, rest = text.strip().partition(":")
    if kind not in KINDS:
        raise UsageError(f"fault {text!r}: kind must be one of {', '.join(KINDS)}")
    values: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in KEYS:
            raise UsageError(
                f"fault {text!r}: {item!r} is not key=value with key in {', '.join(KEYS)}"
            )
        values[key] = value
    try:
        rank = int(values.get("rank", "0"))
        after = float(values.get("after", "0"))
    except ValueError as exc:
        raise UsageError(f"fault {text!r}: rank must be an integer and after a number") from exc
    if rank < 0 or after < 0:
        raise UsageError(f"fault {text!r}: rank and after must not be negative")
    status = values.get("status", c.HEALTH_PENDING_REBOOT)
    if status not in NODE_STATUSES:
        raise UsageError(f"fault {text!r}: status must be one of {', '.join(NODE_STATUSES)}")
    return FaultSpec(kind, rank, values.get("node") or None, after, status)


def worker_location(ctx: JobContext, rank: int) -> tuple[PodView, int]:
    """The pod running global rank ``rank`` and that worker's pid."""
    for pod in ctx.active_pods:
        extra = pod.status.trainguard if pod.status else None
        pids = extra.worker_pids if extra else []
        if not pids or pod.record.node_rank is None:
            continue
        first = pod.record.node_rank * len(pids)
        if first <= rank < first + len(pids):
            return pod, pids[rank - first]
    raise UsageError(f"no running worker has rank {rank}")


def inject(spec: FaultSpec, ctx: JobContext, *, backend: Backend, store: SqliteStore) -> str:
    """Carry out ``spec`` against the running job; returns what was done."""
    if spec.kind == "node-unhealthy":
        node = spec.node or worker_location(ctx, spec.rank)[0].record.node
        store.patch_node(node, labels={c.LABEL_NODE_HEALTH: spec.status})
        return f"labelled node {node} {c.LABEL_NODE_HEALTH}={spec.status}"
    pod, worker_pid = worker_location(ctx, spec.rank)
    if spec.kind == "kill-agent":
        extra = pod.status.trainguard if pod.status else None
        if extra is None or extra.pid is None:
            raise UsageError(f"pod {pod.name} did not report its agent pid")
        backend.signal(pod.record, extra.pid, signal.SIGKILL)
        return f"killed agent {extra.pid} of pod {pod.name}"
    sig = signal.SIGKILL if spec.kind == "kill-worker" else signal.SIGSTOP
    backend.signal(pod.record, worker_pid, sig)
    return f"sent {sig.name} to worker rank {spec.rank} (pid {worker_pid}) in pod {pod.name}"
