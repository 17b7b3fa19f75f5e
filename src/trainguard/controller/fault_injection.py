"""Fault injection: carry out a `FaultSpec` against a running job, for real.

One executor per kind, looked up in `EXECUTORS` (STYLE 4: executors in a dict, not an
if-chain): ``kill-worker`` sends SIGKILL to a worker, ``hang-worker`` SIGSTOP (so only a log
rule can notice), ``kill-agent`` SIGKILL to a pod's agent, ``node-unhealthy`` marks the node
through `Backend.mark_node_health` — the same store/backend write the node health agent makes,
so the controller remediates it as it would a real unhealthy node. Executors act through the
backend only; they never touch a reconcile step's write. A worker is signalled by the pid its
agent reports, so only while that agent runs it: a completed agent still lists the pids of
workers that exited (refused, with that reason), and the injector waits out any other state
(`trainguard.controller.fault_requests`). When a fault is due and what became
of it is `trainguard.controller.fault_requests`; the spec and its grammar are
`trainguard.spec.faults`.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence

from trainguard import constants as c
from trainguard.agent.protocol import AgentState
from trainguard.backends.base import Backend
from trainguard.controller.context import PodView
from trainguard.errors import UsageError
from trainguard.policy.elastic import elastic_bounds
from trainguard.spec.faults import FaultKind, FaultSpec
from trainguard.spec.job import HyperPodPyTorchJob

Executor = Callable[[FaultSpec, Sequence[PodView], Backend], str]
"""Carries out a spec against the job's active pods (by node rank); returns what was done.
Raises a `TrainguardError` when the target is missing."""


def check_fits(spec: FaultSpec, job: HyperPodPyTorchJob) -> None:
    """Refuse a fault aimed at a rank the job will never have (`UsageError`, field named)."""
    nproc = job.spec.nproc_per_node
    if not nproc.isdigit():
        return  # "auto": the world size is known only once workers run
    bounds = elastic_bounds(job.spec)
    world = int(nproc) * (bounds.target if bounds else job.spec.total_replicas)
    if spec.rank >= world:
        raise UsageError(
            f"fault {spec.render()!r}: rank {spec.rank} is out of range; job {job.name} has "
            f"ranks 0..{world - 1}"
        )


def worker_location(pods: Sequence[PodView], rank: int, backend: Backend) -> tuple[PodView, int]:
    """The pod running global rank ``rank`` and that worker's pid: from the pids the agents
    report (``status.trainguard.worker_pids``) or, for agents that report none (HyperPod's),
    from the pods' process trees through the backend."""
    for pod in pods:
        extra = pod.status.trainguard if pod.status else None
        pids = extra.worker_pids if extra else []
        if not pids or pod.record.node_rank is None:
            continue
        first = pod.record.node_rank * len(pids)
        if first <= rank < first + len(pids):
            return pod, pids[rank - first]
    for pod in pods:
        extra = pod.status.trainguard if pod.status else None
        if pod.record.node_rank is None or (extra is not None and extra.worker_pids):
            continue
        pid = backend.find_worker(pod.record, rank)
        if pid is not None:
            return pod, pid
    raise UsageError(f"no running worker has rank {rank}")


def inject(spec: FaultSpec, pods: Sequence[PodView], *, backend: Backend) -> str:
    """Carry out ``spec`` against the job's active ``pods``; returns what was done."""
    return EXECUTORS[spec.kind](spec, pods, backend)


def _signal_worker(sig: signal.Signals) -> Executor:
    def execute(spec: FaultSpec, pods: Sequence[PodView], backend: Backend) -> str:
        pod, worker_pid = worker_location(pods, spec.rank, backend)
        if pod.agent_state is AgentState.COMPLETED:
            # its workers exited 0; the agent still lists their pids, which are stale now
            raise UsageError(
                f"worker rank {spec.rank} in pod {pod.name} has already finished (its agent "
                f"reports completed); pid {worker_pid} is no longer its worker"
            )
        backend.signal(pod.record, worker_pid, sig)
        return f"sent {sig.name} to worker rank {spec.rank} (pid {worker_pid}) in pod {pod.name}"

    return execute


def _kill_agent(spec: FaultSpec, pods: Sequence[PodView], backend: Backend) -> str:
    pod, _ = worker_location(pods, spec.rank, backend)
    extra = pod.status.trainguard if pod.status else None
    if extra is None or extra.pid is None:
        raise UsageError(f"pod {pod.name} did not report its agent pid")
    backend.signal(pod.record, extra.pid, signal.SIGKILL)
    return f"killed agent {extra.pid} of pod {pod.name}"


def _node_unhealthy(spec: FaultSpec, pods: Sequence[PodView], backend: Backend) -> str:
    node = spec.node or worker_location(pods, spec.rank, backend)[0].record.node
    backend.mark_node_health(node, spec.status, why=f"fault {spec.render()}")
    return f"labelled node {node} {c.LABEL_NODE_HEALTH}={spec.status}"


EXECUTORS: dict[FaultKind, Executor] = {
    "kill-worker": _signal_worker(signal.SIGKILL),
    "hang-worker": _signal_worker(signal.SIGSTOP),
    "kill-agent": _kill_agent,
    "node-unhealthy": _node_unhealthy,
}
