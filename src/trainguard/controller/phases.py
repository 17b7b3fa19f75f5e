"""One handler per job phase: observe the context, act, maybe move to the next phase.

Handlers are level-triggered (like Kubernetes controllers): each looks at what *is* (pods,
agent states, node labels) rather than at what it did last time, so a controller restarted in
the middle of a restart picks up exactly where the last one stopped — a pod already created is
not created twice, an agent already started is not started twice.
"""

from __future__ import annotations

from collections.abc import Callable

from trainguard import constants as c
from trainguard.agent.protocol import RESTART_MODE_PLR, AgentState, StopRequest
from trainguard.controller.context import JobContext, PodView
from trainguard.controller.deps import Deps
from trainguard.controller.detect import detect_fault, unhealthy_nodes
from trainguard.controller.lifecycle import (
    clean_up,
    complete,
    handle_fault,
    mark_running,
    start_workers,
)
from trainguard.controller.pods import PodPlan, plan_placement, rank_plans, spare_plans
from trainguard.controller.progress import remember
from trainguard.controller.state import ActiveFault, JobPhase
from trainguard.policy.placement import Unschedulable
from trainguard.spec.status import Resume

Handler = Callable[[JobContext, Deps], None]
RUNNING_STATES = frozenset({AgentState.RUNNING, AgentState.COMPLETED})
STOPPABLE = frozenset({AgentState.RUNNING, AgentState.FAULTED, AgentState.COMPLETED})


def on_pending(ctx: JobContext, deps: Deps) -> None:
    """Place and create every pod of the job."""
    if ctx.job.spec.run_policy.suspend:
        ctx.condition(c.COND_CREATED, "True", "Suspended", "runPolicy.suspend is true")
        return
    if _create_pods(ctx, deps, rank_plans(ctx) + spare_plans(ctx, existing=0)):
        ctx.state.move(JobPhase.CREATING, now=ctx.now)


def on_creating(ctx: JobContext, deps: Deps) -> None:
    """Wait until every agent is ready, then start the workers."""
    if _remediate_if_faulted(ctx, deps):
        return
    waiting = [p for p in ctx.pods if p.agent_state is not AgentState.READY]
    if waiting:
        if ctx.now - ctx.state.phase_since > deps.settings.ready_timeout:
            _not_ready(ctx, deps, waiting)
        return
    ctx.condition(c.COND_PODS_RUNNING, "True", "PodsRunning", f"{len(ctx.pods)} pod(s) ready")
    start_workers(ctx, deps)
    ctx.state.move(JobPhase.STARTING, now=ctx.now)


def on_starting(ctx: JobContext, deps: Deps) -> None:
    """Wait until every agent reports running workers of this restart."""
    if _remediate_if_faulted(ctx, deps):
        return
    active = ctx.active_pods
    if all(p.agent_state is AgentState.COMPLETED for p in active):
        complete(ctx, deps)
    elif all(p.agent_state in RUNNING_STATES and _current(ctx, p) for p in active):
        mark_running(ctx)
    elif ctx.now - ctx.state.phase_since > deps.settings.start_resend_after:
        ready = [p for p in active if p.agent_state is AgentState.READY]
        if ready:
            start_workers(ctx, deps, resend_to=ready)
            ctx.state.phase_since = ctx.now


def on_running(ctx: JobContext, deps: Deps) -> None:
    """Watch for faults and for the end of training."""
    ctx.state.progress = remember(ctx.state.progress, ctx.active_pods)
    _record_resume(ctx)
    if _remediate_if_faulted(ctx, deps):
        return
    if all(p.agent_state is AgentState.COMPLETED for p in ctx.active_pods):
        complete(ctx, deps)


def on_restarting(ctx: JobContext, deps: Deps) -> None:
    """Process-level restart: replace lost pods, stop every worker, start again when all ready."""
    fault = ctx.state.fault
    assert fault is not None, "a restarting job has a fault"
    _queue_new_losses(ctx, fault)
    if fault.replace and not _replace_pods(ctx, deps, fault):
        return
    _refill_spares(ctx, deps)
    to_stop = [p for p in ctx.active_pods if p.agent_state in STOPPABLE]
    stop = StopRequest(restart_mode=RESTART_MODE_PLR)
    deps.hub.fan_out(
        [p.record for p in to_stop], ctx.state.token, lambda _pod, client: client.stop(stop)
    )
    if all(p.agent_state is AgentState.READY for p in ctx.active_pods) and not to_stop:
        start_workers(ctx, deps)
        ctx.state.move(JobPhase.STARTING, now=ctx.now)
    elif ctx.now - ctx.state.phase_since > deps.settings.stop_timeout:
        stuck = [p for p in ctx.active_pods if p.agent_state is not AgentState.READY]
        fault.replace = [p.name for p in stuck]
        ctx.event(
            "Warning", "StopTimeout", "Pods did not stop in time: " + ", ".join(fault.replace)
        )
        ctx.state.phase_since = ctx.now


def on_full_restarting(ctx: JobContext, deps: Deps) -> None:
    """Full job restart: delete every pod, then create all again on fit nodes."""
    if ctx.pods:
        doomed = list(ctx.pods)
        deps.maker.delete(ctx, doomed)
        for pod in doomed:
            deps.hub.forget(pod.name)
        ctx.state.attempt += 1
    if _create_pods(ctx, deps, rank_plans(ctx) + spare_plans(ctx, existing=0)):
        ctx.state.move(JobPhase.CREATING, now=ctx.now)


def on_finished(ctx: JobContext, deps: Deps) -> None:
    """Completed or Failed: clean up once, remove after ``ttlSecondsAfterFinished``."""
    if not ctx.state.cleaned_up:
        clean_up(ctx, deps)
    ttl = ctx.job.spec.run_policy.ttl_seconds_after_finished
    finished = ctx.record.finished_at or ctx.now
    if ttl is not None and ttl >= 0 and ctx.now - finished >= ttl:
        ctx.state.move(JobPhase.DELETING, now=ctx.now)


HANDLERS: dict[JobPhase, Handler] = {
    JobPhase.PENDING: on_pending,
    JobPhase.CREATING: on_creating,
    JobPhase.STARTING: on_starting,
    JobPhase.RUNNING: on_running,
    JobPhase.RESTARTING: on_restarting,
    JobPhase.FULL_RESTARTING: on_full_restarting,
    JobPhase.COMPLETED: on_finished,
    JobPhase.FAILED: on_finished,
}


# --- helpers -----------------------------------------------------------------------------------


def _remediate_if_faulted(ctx: JobContext, deps: Deps) -> bool:
    fault = detect_fault(ctx.pods, ctx.nodes, now=ctx.now)
    if fault is None:
        return False
    handle_fault(ctx, deps, fault)
    return True


def _current(ctx: JobContext, pod: PodView) -> bool:
    """The agent runs workers of the current restart (older agents may not say)."""
    extra = pod.status.trainguard if pod.status else None
    return extra is None or extra.fault_count is None or extra.fault_count == ctx.state.fault_count


def _not_ready(ctx: JobContext, deps: Deps, waiting: list[PodView]) -> None:
    names = ", ".join(p.name for p in waiting)
    fault = ActiveFault(
        reason=c.REASON_POD_LOST,
        message=f"Pods not ready in time: {names}",
        detected_at=ctx.now,
        observed_at=ctx.now,
        pods=[p.name for p in waiting],
        nodes=[p.record.node for p in waiting],
        ranks=[p.record.node_rank for p in waiting if p.record.node_rank is not None],
        replace=[p.name for p in waiting],
    )
    handle_fault(ctx, deps, fault)


def _create_pods(ctx: JobContext, deps: Deps, plans: list[PodPlan]) -> bool:
    placement = plan_placement(ctx, plans, deps.maker.occupied_nodes())
    if isinstance(placement, Unschedulable):
        ctx.condition(c.COND_PODS_RUNNING, "False", "Unschedulable", placement.message)
        return False
    for plan in plans:
        deps.maker.create(ctx, plan, placement[plan.key])
    ctx.event("Normal", "CreatedPods", f"Created {len(plans)} pod(s) (attempt {ctx.state.attempt})")
    return True


def _queue_new_losses(ctx: JobContext, fault: ActiveFault) -> None:
    """Pods that died or whose node went bad while restarting are replaced too."""
    bad_nodes = set(unhealthy_nodes(ctx.pods, ctx.nodes))
    for pod in ctx.active_pods:
        lost = not pod.alive or pod.record.node in bad_nodes
        if lost and pod.name not in fault.replace:
            fault.replace.append(pod.name)


def _replace_pods(ctx: JobContext, deps: Deps, fault: ActiveFault) -> bool:
    """Move the ranks of ``fault.replace`` to a spare or a new pod; False if none fits yet."""
    victims = [p for p in ctx.pods if p.name in fault.replace]
    ranks = [p.record.node_rank for p in victims if p.record.node_rank is not None]
    if victims:
        deps.maker.delete(ctx, victims)
        for pod in victims:
            deps.hub.forget(pod.name)
    bad_nodes = set(fault.nodes) if fault.reason == c.REASON_NODE_FAULT else set()
    for rank in ranks:
        if ctx.state.placement.get(str(rank)) in bad_nodes:
            del ctx.state.placement[str(rank)]
    leftover = [rank for rank in ranks if not _promote_spare(ctx, deps, rank)]
    ctx.state.pending_ranks = sorted({*ctx.state.pending_ranks, *leftover})
    if ctx.state.pending_ranks and not _create_pods(
        ctx, deps, rank_plans(ctx, ctx.state.pending_ranks)
    ):
        fault.replace = []
        return False
    ctx.state.pending_ranks = []
    fault.replace = []
    return True


def _promote_spare(ctx: JobContext, deps: Deps, rank: int) -> bool:
    bad_nodes = set(unhealthy_nodes(ctx.spare_pods, ctx.nodes))
    for spare in ctx.spare_pods:
        if (
            spare.alive
            and spare.agent_state is AgentState.READY
            and spare.record.node not in bad_nodes
        ):
            spare.record.spare, spare.record.node_rank = False, rank
            spare.record.labels[c.LABEL_NODE_RANK] = str(rank)
            deps.store.save_pod(spare.record)
            ctx.state.placement[str(rank)] = spare.record.node
            message = f"Spare pod {spare.name} on {spare.record.node} takes node rank {rank}"
            ctx.event("Normal", "SparePromoted", message)
            return True
    return False


def _refill_spares(ctx: JobContext, deps: Deps) -> None:
    live = [p for p in ctx.spare_pods if p.alive]
    dead = [p for p in ctx.spare_pods if not p.alive]
    if dead:
        deps.maker.delete(ctx, dead)
    plans = spare_plans(ctx, existing=len(live))
    if plans:
        placement = plan_placement(ctx, plans, deps.maker.occupied_nodes())
        if not isinstance(placement, Unschedulable):
            for plan in plans:
                deps.maker.create(ctx, plan, placement[plan.key])


def _record_resume(ctx: JobContext) -> None:
    """Once per restart, record where the workers resumed from (status.resumes)."""
    key = str(ctx.state.fault_count)
    if key in ctx.state.resumes_recorded:
        return
    for pod in ctx.active_pods:
        extra = pod.status.trainguard if pod.status else None
        if extra is None or extra.resume is None or extra.fault_count != ctx.state.fault_count:
            continue
        resume = Resume(
            restart=ctx.state.fault_count, step=extra.resume.step, tier=extra.resume.tier
        )
        ctx.status.resumes.append(resume)
        ctx.state.resumes_recorded.append(key)
        return
