"""One handler per job phase: observe the context, act, maybe move to the next phase.

Handlers are level-triggered (like Kubernetes controllers): each looks at what *is* (pods,
agent states, node labels) rather than at what it did last time, so a controller restarted in
the middle of a restart picks up exactly where the last one stopped — a pod already created is
not created twice, an agent already started is not started twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from trainguard import constants as c
from trainguard.agent.protocol import AgentState
from trainguard.controller.context import JobContext, PodView, condition_is
from trainguard.controller.deps import Deps
from trainguard.controller.detect import (
    detect_fault,
    lost_pods_fault,
    pod_fault,
    unhealthy_nodes,
)
from trainguard.controller.held_steps import remember
from trainguard.controller.lifecycle import (
    clean_up,
    complete,
    handle_fault,
    mark_running,
    start_workers,
)
from trainguard.controller.pods import PodPlan, plan_placement, rank_plans, spare_plans
from trainguard.controller.scaling import apply_resize, grow_if_due, size_to_fit, stop_request
from trainguard.controller.scaling_timeout import abandon_if_timed_out
from trainguard.controller.scheduling import REASON_FAILED_SCHEDULING, node_account
from trainguard.controller.state import ActiveFault, JobPhase
from trainguard.policy.placement import Unschedulable
from trainguard.policy.restart import start_backoff
from trainguard.spec.status import Resume

Handler = Callable[[JobContext, Deps], None]
RUNNING_STATES = frozenset({AgentState.RUNNING, AgentState.COMPLETED})
STOPPABLE = frozenset({AgentState.RUNNING, AgentState.FAULTED, AgentState.COMPLETED})


def on_pending(ctx: JobContext, deps: Deps) -> None:
    """Place and create every pod of the job (`suspension.hold` keeps back a held one)."""
    if _create_all(ctx, deps):
        ctx.state.move(JobPhase.CREATING, now=ctx.now)


def on_creating(ctx: JobContext, deps: Deps) -> None:
    """Wait until every agent is ready, then start the workers."""
    if _remediate_if_faulted(ctx, deps):
        return
    waiting = [p for p in ctx.pods if p.agent_state is not AgentState.READY]
    unseen = _unseen_ranks(ctx)
    if waiting or unseen:
        if ctx.since(ctx.state.phase_since) > deps.settings.ready_timeout:
            _not_ready(ctx, deps, waiting, unseen=unseen)
        return
    ctx.condition(c.COND_PODS_RUNNING, "True", "PodsRunning", f"{len(ctx.pods)} pod(s) ready")
    start_workers(ctx, deps)
    ctx.state.move(JobPhase.STARTING, now=ctx.now)


def on_starting(ctx: JobContext, deps: Deps) -> None:
    """Wait until every agent reports running workers of this restart."""
    if _remediate_if_faulted(ctx, deps) or abandon_if_timed_out(ctx, deps):
        return
    active = ctx.active_pods
    if all(p.agent_state is AgentState.COMPLETED for p in active):
        complete(ctx, deps)
    elif all(p.agent_state in RUNNING_STATES and _current(ctx, p) for p in active):
        mark_running(ctx)
    elif ctx.since(ctx.state.phase_since) > deps.settings.start_resend_after:
        ready = [p for p in active if p.agent_state is AgentState.READY]
        if ready:
            start_workers(ctx, deps, resend_to=ready)
            ctx.state.phase_since = ctx.now


def on_running(ctx: JobContext, deps: Deps) -> None:
    """Watch for faults and for the end of training."""
    ctx.state.progress = remember(ctx.state.progress, ctx.active_pods)
    _record_resume(ctx)
    _report_training_resumed(ctx)
    if _remediate_if_faulted(ctx, deps):
        return
    if all(p.agent_state is AgentState.COMPLETED for p in ctx.active_pods):
        complete(ctx, deps)
    elif ctx.job.spec.elastic_policy is not None:
        grow_if_due(ctx, deps)


def on_restarting(ctx: JobContext, deps: Deps) -> None:
    """Process-level restart: replace lost pods, stop every worker, start again when all ready."""
    fault = ctx.state.fault
    assert fault is not None, "a restarting job has a fault"
    if abandon_if_timed_out(ctx, deps) or _new_start_failures(ctx, deps, fault):
        return
    _queue_new_losses(ctx, fault)
    if fault.restart_type == c.RESTART_SCALE and not apply_resize(ctx, deps, fault):
        return
    # pending ranks: lost pods whose replacement did not place yet (retried until it does)
    if (fault.replace or ctx.state.pending_ranks) and not _replace_pods(ctx, deps, fault):
        return
    _refill_spares(ctx, deps)
    to_stop = [p for p in ctx.active_pods if p.agent_state in STOPPABLE]
    stop = stop_request(ctx, fault)
    deps.hub.fan_out(
        [p.record for p in to_stop], ctx.state.token, lambda _pod, client: client.stop(stop)
    )
    if all(p.agent_state is AgentState.READY for p in ctx.active_pods) and not to_stop:
        start_workers(ctx, deps)
        ctx.state.move(JobPhase.STARTING, now=ctx.now)
    elif ctx.since(ctx.state.phase_since) > deps.settings.stop_timeout:
        stuck = [p for p in ctx.active_pods if p.agent_state is not AgentState.READY]
        fault.replace = [p.name for p in stuck if not p.never_ready]
        if not fault.replace:
            return  # only pods still starting: `_new_start_failures` times them out
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
    if _backing_off(ctx):
        return
    if _create_all(ctx, deps):
        ctx.state.move(JobPhase.CREATING, now=ctx.now)


def on_finished(ctx: JobContext, deps: Deps) -> None:
    """Completed or Failed: clean up once, remove after ``ttlSecondsAfterFinished``."""
    if not ctx.state.cleaned_up:
        clean_up(ctx, deps)
    ttl = ctx.job.spec.run_policy.ttl_seconds_after_finished
    finished = ctx.record.finished_at or ctx.now
    if ttl is not None and ttl >= 0 and ctx.since(finished) >= ttl:
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


def _unseen_ranks(ctx: JobContext) -> list[int]:
    """Node ranks with no pod in the store: a pod the last step created that a lagging watch
    has not shown yet (the next step sees it), or one deleted behind the controller's back."""
    held = {p.record.node_rank for p in ctx.active_pods}
    return [rank for rank in range(ctx.size) if rank not in held]


def _not_ready(
    ctx: JobContext, deps: Deps, waiting: list[PodView], *, unseen: Sequence[int] = ()
) -> None:
    described = "; ".join(p.name + (f" ({p.failure})" if p.failure else "") for p in waiting)
    if unseen:
        missing = f"no pod for node rank(s) {', '.join(map(str, unseen))}"
        described = f"{described}; {missing}" if described else missing
    message = f"Pods not ready in time: {described}"
    fault = pod_fault(c.REASON_POD_LOST, message, waiting, now=ctx.now, start_failure=True)
    handle_fault(ctx, deps, fault)


def _new_start_failures(ctx: JobContext, deps: Deps, fault: ActiveFault) -> bool:
    """A pod (a replacement, say) lost or not ready in time before its agent was ever ready is
    a new fault — counted against the job's limits and backed off — not a silent replacement:
    pods whose command is not found would be recreated forever."""
    started = [p for p in ctx.active_pods if p.never_ready and p.name not in fault.replace]
    lost = [p for p in started if not p.alive]
    late = [p for p in started if p.alive and _too_late(ctx, deps, p)]
    if not lost and not late:
        return False
    if lost:
        handle_fault(ctx, deps, lost_pods_fault(lost, now=ctx.now))
    else:
        _not_ready(ctx, deps, late)
    ctx.state.phase_since = ctx.now
    return True


def _too_late(ctx: JobContext, deps: Deps, pod: PodView) -> bool:
    return ctx.since(pod.record.created_at) > deps.settings.ready_timeout


def _backing_off(ctx: JobContext) -> bool:
    """Whether pods that failed to start must not be recreated yet (`start_backoff`)."""
    fault = ctx.state.fault
    if fault is None or not fault.start_failure:
        return False
    return ctx.since(fault.observed_at) < start_backoff(ctx.state.start_failures)


def _create_all(ctx: JobContext, deps: Deps) -> bool:
    """Every pod of a (re)start; an elastic job at the largest size that fits, spares after."""
    if ctx.job.spec.elastic_policy is None:
        return _create_pods(ctx, deps, rank_plans(ctx) + spare_plans(ctx, existing=0))
    size_to_fit(ctx, deps)
    if not _create_pods(ctx, deps, rank_plans(ctx)):
        return False
    _refill_spares(ctx, deps)
    return True


def _create_pods(ctx: JobContext, deps: Deps, plans: list[PodPlan]) -> bool:
    placement = plan_placement(ctx, plans, deps.maker.occupied_nodes(ctx))
    if isinstance(placement, Unschedulable):
        _unschedulable(ctx, deps, placement)
        return False
    for plan in plans:
        deps.maker.create(ctx, plan, placement[plan.key])
    ctx.event("Normal", "CreatedPods", f"Created {len(plans)} pod(s) (attempt {ctx.state.attempt})")
    return True


def _unschedulable(ctx: JobContext, deps: Deps, placement: Unschedulable) -> None:
    """Condition PodsRunning=False/Unschedulable with a node account; an event when it changes."""
    account = node_account(ctx, deps.store.list_pods(), deps.store.find_job)
    message = f"{account}; {placement.message}"
    if not condition_is(ctx.status, c.COND_PODS_RUNNING, "Unschedulable", message):
        ctx.event("Warning", REASON_FAILED_SCHEDULING, message)
    ctx.condition(c.COND_PODS_RUNNING, "False", "Unschedulable", message)


def _queue_new_losses(ctx: JobContext, fault: ActiveFault) -> None:
    """Pods that died or whose node went bad while restarting are replaced too."""
    bad_nodes = set(unhealthy_nodes(ctx.pods, ctx.nodes))
    for pod in ctx.active_pods:
        lost = not pod.alive or pod.record.node in bad_nodes
        if lost and pod.name not in fault.replace:
            fault.replace.append(pod.name)


def _replace_pods(ctx: JobContext, deps: Deps, fault: ActiveFault) -> bool:
    """Move the ranks of ``fault.replace`` to a spare or a new pod; False if none fits yet
    or the pods failed to start and their backoff is not over."""
    if _backing_off(ctx):
        return False
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
            ctx.write.save_pod(spare.record)
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
        placement = plan_placement(ctx, plans, deps.maker.occupied_nodes(ctx))
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
        reported = extra.resume
        resume = Resume(
            restart=ctx.state.fault_count,
            step=reported.step,
            tier=reported.tier,
            world_size=reported.world_size,
            saved_world_size=reported.saved_world_size,
            reason=reported.reason,
        )
        ctx.status.resumes.append(resume)
        ctx.state.resumes_recorded.append(key)
        return


def _report_training_resumed(ctx: JobContext) -> None:
    """After a restart, once every rank did its first step: when, and from where (an event).

    "Remediated in N ms" counts until the agents run; useful work starts only at the first
    step (after imports, rendezvous and the checkpoint load), which this event times.
    """
    awaited = ctx.state.awaiting_first_step
    if awaited is None:
        return
    extras = [p.status.trainguard if p.status else None for p in ctx.active_pods]
    trainings = [
        (e.training, e.resume)
        for e in extras
        if e is not None and e.training is not None and e.fault_count == awaited.fault_count
    ]
    if not trainings or len(trainings) < len(extras):
        return
    first_at = max(t.first_step_at for t, _ in trainings)
    step = max(t.first_step for t, _ in trainings)
    resume = next((r for _, r in trainings if r is not None and r.step is not None), None)
    origin = f" from {resume.tier} (checkpoint of step {resume.step})" if resume else ""
    waited = round(max(0.0, first_at - awaited.detected_at) * 1000)
    ctx.event(
        "Normal",
        c.REASON_TRAINING_RESUMED,
        f"Training resumed at step {step}{origin}, {waited} ms after the fault of reason "
        f"{awaited.reason} was detected (remediated in {awaited.remediated_ms} ms)",
    )
    ctx.state.awaiting_first_step = None
    ctx.state.resized_at = ctx.now  # the scale-up snooze counts from training again
