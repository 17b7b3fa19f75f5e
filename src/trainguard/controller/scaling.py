"""Elastic jobs: start with the nodes that fit, shrink instead of waiting, grow when nodes return.

`trainguard.policy.elastic` says which sizes a job may run at; this module finds the largest
of them that placement accepts and carries a resize out. A resize is a restart of kind
``Scale``: the job goes through `JobPhase.RESTARTING` like a process-level restart (workers
stopped, pods kept), with three differences done here —

- the lost pods are deleted without replacement, survivors keep their pods and are renumbered
  to node ranks ``0..n-1`` (their rank label changes, nothing else; HyperPod's protocol hands
  rank and ``nnodes`` to the agents in ``/start``, so no rendezvous service is told);
- pods for new ranks are created when growing, surplus ones deleted when a discrete size
  needs fewer than survive;
- the restart row is of kind ``Scale``, which `restart_history` does not count, so resizes
  never use up ``jobMaxRetryCount`` or the PLR window.

A grow waits ``scaleUpSnoozeTimeInSeconds`` after the last restart or resize (HyperPod's
snooze) — counted from when every rank trained again after it, when they did — so a node that
flaps does not restart the job at every flap, and a job that just shrank trains at its new
size before it grows again.
"""

from __future__ import annotations

from trainguard import constants as c
from trainguard.agent.protocol import RESTART_MODE_PLR, AgentState, StopRequest
from trainguard.controller.context import JobContext, PodView
from trainguard.controller.deps import Deps
from trainguard.controller.detect import unhealthy_nodes
from trainguard.controller.pods import plan_placement, rank_plans
from trainguard.controller.state import ActiveFault, JobPhase, Resize
from trainguard.metrics import Metrics
from trainguard.policy.elastic import elastic_bounds, fitting_sizes, grow_check
from trainguard.policy.placement import Unschedulable
from trainguard.spec.status import FaultyPodInstanceList
from trainguard.store.records import RestartRecord

FIRST_STEP_WAIT = 120.0
"""Seconds a grow waits at most for the workers' first step after the last restart (the
``TrainingResumed`` event): a job that just resized trains at its new size before it grows
again; scripts that report no steps grow after this long."""
SHRINKABLE = frozenset({c.REASON_NODE_FAULT, c.REASON_POD_LOST})
"""Faults a smaller size can absorb: a rank lost its pod or node (a crash needs a restart)."""


def size_to_fit(ctx: JobContext, deps: Deps) -> None:
    """Before creating every pod of an elastic job: the largest allowed size that places.

    Leaves the minimum when none places, so the caller reports the job Unschedulable.
    """
    bounds = elastic_bounds(ctx.job.spec)
    if bounds is None:
        return
    occupied = deps.maker.occupied_nodes(ctx)
    for size in fitting_sizes(bounds, at_most=bounds.target):
        if _places(ctx, range(size), occupied, size=size):
            ctx.state.size = size
            return
    ctx.state.size = bounds.minimum


def show_size(ctx: JobContext) -> None:
    """``status.currentReplicas`` / ``desiredReplicas`` of an elastic job (at each start)."""
    bounds = elastic_bounds(ctx.job.spec)
    if bounds is not None:
        ctx.status.current_replicas, ctx.status.desired_replicas = ctx.size, bounds.target


def shrink_for_fault(ctx: JobContext, deps: Deps, fault: ActiveFault) -> bool:
    """Absorb a lost node by scaling down, when no spare nor free node can take its ranks.

    Returns:
        True when the job now restarts at a smaller size (the fault is handled).
    """
    bounds = elastic_bounds(ctx.job.spec)
    if bounds is None or fault.reason not in SHRINKABLE or not fault.replace:
        return False
    if fault.start_failure or _ready_spare(ctx) or _replaceable(ctx, deps, fault):
        return False
    survivors = [p for p in ctx.active_pods if p.name not in fault.replace]
    sizes = fitting_sizes(bounds, at_most=len(survivors))
    if not sizes:
        return False
    # with faultyScaleDownTimeoutInSeconds the size stays while a node may still come back
    size = ctx.size if _faulty_wait(ctx) > 0 else sizes[0]
    begin_resize(ctx, fault, size=size, reason=c.REASON_SCALE_DOWN)
    return True


def grow_if_due(ctx: JobContext, deps: Deps) -> bool:
    """Scale a running elastic job up when more of its sizes place (after the snooze)."""
    bounds = elastic_bounds(ctx.job.spec)
    awaited = ctx.state.awaiting_first_step
    if bounds is None or (awaited and ctx.since(awaited.detected_at) < FIRST_STEP_WAIT):
        return False
    check = grow_check(bounds, current=ctx.size, last_resize=ctx.state.resized_at, now=ctx.now)
    if not check.sizes:
        return False
    occupied = deps.maker.occupied_nodes(ctx)
    for size in check.sizes:
        if _places(ctx, range(ctx.size, size), occupied, size=size):
            fault = ActiveFault(
                reason=c.REASON_SCALE_UP,
                message=f"{size - ctx.size} more node(s) are Schedulable",
                detected_at=ctx.now,
                observed_at=ctx.now,
            )
            begin_resize(ctx, fault, size=size, reason=c.REASON_SCALE_UP)
            return True
    return False


def begin_resize(ctx: JobContext, fault: ActiveFault, *, size: int, reason: str) -> None:
    """Start a restart of kind Scale to ``size`` node ranks (`apply_resize` carries it out)."""
    before = ctx.size
    ctx.state.size = size
    ctx.state.fault_count += 1
    ctx.state.resized_at = ctx.now
    fault.restart_type = c.RESTART_SCALE
    if size != before:  # waiting for a node to come back is not a resize yet
        fault.resize = Resize(before=before, began_at=ctx.now)
    ctx.state.fault = fault
    ctx.status.latest_faulty_pod_instance_list = FaultyPodInstanceList(
        restart_type=c.RESTART_SCALE,
        faulty_instance_id_list=fault.nodes,
        faulty_pod_list=fault.pods,
        faulty_rank_list=fault.ranks,
    )
    ctx.write.restarts.append(
        RestartRecord(
            ctx.namespace,
            ctx.name,
            ctx.now,
            c.RESTART_SCALE,
            fault.reason,
            tuple(fault.pods),
            tuple(fault.ranks),
            tuple(fault.nodes),
        )
    )
    ctx.metric(Metrics.job_restarted, restart_type=c.RestartType.SCALE)
    if size == before:
        message = (
            f"Waiting up to {_faulty_wait(ctx):g} s (faultyScaleDownTimeoutInSeconds) for a "
            f"node to take the lost rank(s) before scaling down: {fault.message}"
        )
    else:
        message = f"Scaling from {before} to {size} node(s): {fault.message}"
    ctx.event("Normal", reason, message)
    bounds = elastic_bounds(ctx.job.spec)
    ctx.status.desired_replicas = bounds.target if bounds else size
    ctx.state.move(JobPhase.RESTARTING, now=ctx.now)


def apply_resize(ctx: JobContext, deps: Deps, fault: ActiveFault) -> bool:
    """Make the pods match ``ctx.size``: drop lost and surplus ones, renumber, add new ranks.

    Level-triggered: safe to call at every step of the restart. When new ranks no longer place
    (their node went away meanwhile) the size drops to what fits, never below the minimum.

    Returns:
        True when the job has exactly ``ctx.size`` active pods with ranks ``0..size-1``.
    """
    _delete(ctx, deps, [p for p in ctx.pods if p.name in fault.replace])
    fault.replace = []
    survivors = ctx.active_pods
    _delete(ctx, deps, survivors[ctx.size :])
    kept = survivors[: ctx.size]
    _renumber(ctx, kept)
    missing = range(len(kept), ctx.size)
    if not missing:
        return True
    occupied = deps.maker.occupied_nodes(ctx)
    placement = plan_placement(ctx, rank_plans(ctx, missing), occupied)
    if isinstance(placement, Unschedulable):
        _settle_for_fewer(ctx, fault, len(kept))
        return False
    for plan in rank_plans(ctx, missing):
        deps.maker.create(ctx, plan, placement[plan.key])
    return True


def stop_request(ctx: JobContext, fault: ActiveFault) -> StopRequest:
    """How a restart stops the workers: a resize with ``gracefulShutdownTimeoutInSeconds``
    sends SIGUSR1 (workers may save) and waits that long before SIGKILL."""
    elastic = ctx.job.spec.elastic_policy
    graceful = elastic.graceful_shutdown_timeout_in_seconds if elastic else None
    if fault.restart_type != c.RESTART_SCALE or graceful is None:
        return StopRequest(restart_mode=RESTART_MODE_PLR)
    return StopRequest(restart_mode=RESTART_MODE_PLR, is_graceful=True, timeout=graceful)


def _settle_for_fewer(ctx: JobContext, fault: ActiveFault, available: int) -> None:
    """New ranks do not place: the largest size the ``available`` pods allow, once any
    ``faultyScaleDownTimeoutInSeconds`` since the fault has passed (the next step resizes)."""
    if ctx.since(fault.detected_at) < _faulty_wait(ctx):
        return
    bounds = elastic_bounds(ctx.job.spec)
    sizes = fitting_sizes(bounds, at_most=available) if bounds else []
    if sizes and sizes[0] < ctx.size:
        message = f"Scaling from {ctx.size} to {sizes[0]} node(s): no node for the other ranks"
        ctx.event("Normal", c.REASON_SCALE_DOWN, message)
        if fault.resize is None:  # the faulty wait is over: the resize begins now
            fault.resize = Resize(before=ctx.size, began_at=ctx.now)
        ctx.state.size = sizes[0]


def _faulty_wait(ctx: JobContext) -> float:
    elastic = ctx.job.spec.elastic_policy
    wait = elastic.faulty_scale_down_timeout_in_seconds if elastic else None
    return float(wait or 0)


def _renumber(ctx: JobContext, kept: list[PodView]) -> None:
    """Give ``kept`` (in rank order) ranks ``0..n-1``; their held steps move with them."""
    progress: dict[str, list[int]] = {}
    placement: dict[str, str] = {}
    for rank, pod in enumerate(kept):
        old = pod.record.node_rank
        if old is not None and str(old) in ctx.state.progress:
            progress[str(rank)] = ctx.state.progress[str(old)]
        placement[str(rank)] = pod.record.node
        if old != rank:
            pod.record.node_rank = rank
            pod.record.labels[c.LABEL_NODE_RANK] = str(rank)
            ctx.write.save_pod(pod.record)
    ctx.state.progress, ctx.state.placement = progress, placement


def _delete(ctx: JobContext, deps: Deps, pods: list[PodView]) -> None:
    if pods:
        deps.maker.delete(ctx, pods)
        for pod in pods:
            deps.hub.forget(pod.name)


def _places(ctx: JobContext, ranks: range, occupied: set[str], *, size: int) -> bool:
    placement = plan_placement(ctx, rank_plans(ctx, ranks, size=size), occupied)
    return not isinstance(placement, Unschedulable)


def _ready_spare(ctx: JobContext) -> bool:
    bad = set(unhealthy_nodes(ctx.spare_pods, ctx.nodes))
    return any(
        p.alive and p.agent_state is AgentState.READY and p.record.node not in bad
        for p in ctx.spare_pods
    )


def _replaceable(ctx: JobContext, deps: Deps, fault: ActiveFault) -> bool:
    """Whether fresh pods for the fault's ranks would place (a free, fit node exists)."""
    occupied = deps.maker.occupied_nodes(ctx) - {
        p.record.node for p in ctx.pods if p.name in fault.replace
    }
    avoid = set(fault.nodes) if fault.reason == c.REASON_NODE_FAULT else set()
    placement = plan_placement(ctx, rank_plans(ctx, fault.ranks), occupied | avoid)
    return not isinstance(placement, Unschedulable)
