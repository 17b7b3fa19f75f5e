"""Transitions shared by several phases: start workers, declare running, handle a fault,
finish the job (Completed / Failed) and clean up after it.

Each function changes the `JobContext` (state, status, queued events and metrics) and acts
through `Deps`; the reconciler writes the result once afterwards.
"""

from __future__ import annotations

from trainguard import constants as c
from trainguard.agent.protocol import PeerRef, StartRequest, TrainguardStart
from trainguard.clock import rfc3339
from trainguard.controller.agents import AgentApi
from trainguard.controller.context import JobContext, PodView
from trainguard.controller.deps import Deps
from trainguard.controller.held_steps import agreed_step, progress_payload, remember
from trainguard.controller.scaling import show_size, shrink_for_fault
from trainguard.controller.state import ActiveFault, JobPhase, Remediated
from trainguard.errors import ConflictError
from trainguard.metrics import Metrics
from trainguard.policy.restart import (
    GiveUp,
    RestartHistory,
    decide_restart,
    plrs_in_window,
    record,
)
from trainguard.spec.status import FaultyPodInstanceList, ObjectReference
from trainguard.store.records import PodRecord, RestartRecord


def start_workers(ctx: JobContext, deps: Deps, *, resend_to: list[PodView] | None = None) -> None:
    """Send ``/start`` to every active pod with a fresh master port, or re-send it to some."""
    active = ctx.active_pods
    if resend_to is None or ctx.state.master_port is None:
        master = active[0].record
        ctx.state.master_addr = master.host
        ctx.state.master_port = deps.backend.free_port(master.host)
    ctx.state.progress = remember(ctx.state.progress, active)
    step = agreed_step(ctx.state.progress, ctx.size)
    rules = [rule.to_manifest() for rule in ctx.job.spec.run_policy.rules] or None
    extension = TrainguardStart(
        job=ctx.name,
        callback_url=deps.callback_url,
        peers=[PeerRef(rank=p.record.node_rank or 0, url=p.record.url or "") for p in active],
        restart_attempt=ctx.state.attempt,
    )

    def send(pod: PodRecord, client: AgentApi) -> None:
        client.start(
            StartRequest(
                rank=pod.node_rank or 0,
                nnodes=ctx.size,
                fault_count=ctx.state.fault_count,
                master_addr=ctx.state.master_addr or pod.host,
                master_port=ctx.state.master_port or 0,
                log_monitoring_configuration=rules,
                progress=progress_payload(step),
                trainguard=extension,
            )
        )

    targets = [p.record for p in (resend_to if resend_to is not None else active)]
    for name, outcome in deps.hub.fan_out(targets, ctx.state.token, send).items():
        if isinstance(outcome, Exception) and not isinstance(outcome, ConflictError):
            ctx.event("Warning", "StartFailed", f"/start to pod {name} failed: {outcome}")
    ctx.status.master_addr, ctx.status.master_port = ctx.state.master_addr, ctx.state.master_port
    ctx.status.job_pods = [ObjectReference(name=p.name, namespace=ctx.namespace) for p in active]
    if ctx.status.start_time is None:
        ctx.status.start_time = rfc3339(ctx.now)
    show_size(ctx)


def mark_running(ctx: JobContext) -> None:
    """Every active agent runs: condition Running, and the remediation report if recovering."""
    fault = ctx.state.fault
    if fault is not None:
        took = ctx.since(fault.detected_at)
        took_ms = round(took * 1000)
        message = f"The fault of reason {fault.reason} was remediated in {took_ms} milliseconds."
        if fault.reason == c.REASON_SCALE_UP:
            message = f"Scaled up to {ctx.size} node(s) in {took_ms} milliseconds."
        ctx.event("Normal", c.REASON_RUNNING, message)
        ctx.metric(Metrics.restart_latency, took)
        ctx.condition(c.COND_FAULTED, "False", "Remediated", message)
        ctx.state.awaiting_first_step = Remediated(
            reason=fault.reason,
            fault_count=ctx.state.fault_count,
            detected_at=fault.detected_at,
            remediated_ms=took_ms,
        )
        ctx.state.fault = None
    else:
        message = f"All {len(ctx.active_pods)} pod(s) are running"
        ctx.event("Normal", c.REASON_RUNNING, message)
    ctx.condition(c.COND_RUNNING, "True", c.REASON_RUNNING, message)
    ctx.state.start_failures = 0
    if ctx.state.first_running_at is None:
        ctx.state.first_running_at = ctx.now
    ctx.state.move(JobPhase.RUNNING, now=ctx.now)


def handle_fault(ctx: JobContext, deps: Deps, fault: ActiveFault) -> None:
    """Decide PLR / JLR / give up for ``fault`` and move the job accordingly."""
    policy = ctx.job.spec.run_policy
    ctx.event("Warning", fault.reason, fault.message)
    if fault.reason == c.REASON_NODE_FAULT:
        for node in fault.nodes:
            ctx.event(
                "Warning",
                c.REASON_NODE_FAULT,
                f"Found unhealthy node {node}",
                kind="Node",
                name=node,
            )
    ctx.metric(Metrics.fault_detection_latency, max(0.0, fault.observed_at - fault.detected_at))
    ctx.metric(Metrics.fault_detected, fault.reason)
    ctx.condition(c.COND_FAULTED, "True", fault.reason, fault.message)
    if shrink_for_fault(ctx, deps, fault):
        return
    ctx.state.resized_at = ctx.now
    decision = decide_restart(policy, _history(ctx), fault_reason=fault.reason, now=ctx.now)
    ctx.status.latest_faulty_pod_instance_list = FaultyPodInstanceList(
        restart_type=None if isinstance(decision, GiveUp) else decision.kind,  # type: ignore[arg-type]
        faulty_instance_id_list=fault.nodes,
        faulty_pod_list=fault.pods,
        faulty_rank_list=fault.ranks,
    )
    if fault.start_failure:
        ctx.state.start_failures += 1
    if isinstance(decision, GiveUp):
        fail(ctx, deps, decision.reason, f"{decision.message}; the last fault: {fault.message}")
        return
    history = record(ctx.history, decision)
    ctx.state.fault_count += 1
    fault.restart_type = decision.kind
    ctx.state.fault = fault
    ctx.status.restart_count = history.total
    ctx.status.restart_status.full_job_restart_count = history.full
    limits = policy.restart_policy
    if limits is not None and limits.max_full_job_restarts is not None:
        left = max(0, limits.max_full_job_restarts - history.full)
        ctx.metric(Metrics.job_full_restarts_remaining, ctx.record.key, left)
    ctx.status.restart_status.restart_count = len(plrs_in_window(policy, history, ctx.now))
    ctx.status.restart_status.current_eval_period = rfc3339(decision.window_start)
    ctx.write.restarts.append(
        RestartRecord(
            ctx.namespace,
            ctx.name,
            ctx.now,
            decision.kind,
            fault.reason,
            tuple(fault.pods),
            tuple(fault.ranks),
            tuple(fault.nodes),
        )
    )
    ctx.metric(Metrics.job_restarted, restart_type=c.RestartType(decision.kind))
    if decision.kind == c.RESTART_JLR:
        limit = (
            policy.restart_policy.max_num_repeat_offenders_to_avoid
            if policy.restart_policy
            else None
        )
        ctx.state.avoid = fault.nodes[: limit if limit is not None else len(fault.nodes)]
        ctx.event("Warning", "FullJobRestart", f"Full job restart {history.full} ({fault.reason})")
        ctx.state.move(JobPhase.FULL_RESTARTING, now=ctx.now)
    else:
        ctx.event(
            "Normal",
            "ProcessLevelRestart",
            f"Restarting workers (restart {history.total}, {fault.reason})",
        )
        ctx.state.move(JobPhase.RESTARTING, now=ctx.now)


def _history(ctx: JobContext) -> RestartHistory:
    """The restart history with each restart's time re-based to ``now - since(t)``, so the
    policy's eval window measures monotonic time across wall-clock steps."""
    history = ctx.history
    plr_times = tuple(ctx.now - ctx.since(t) for t in history.plr_times)
    return RestartHistory(history.total, history.full, plr_times)


def complete(ctx: JobContext, deps: Deps) -> None:
    """Every worker succeeded."""
    ctx.condition(c.COND_RUNNING, "False", c.COND_COMPLETED, "The job finished")
    ctx.condition(c.COND_COMPLETED, "True", c.COND_COMPLETED, "All workers exited successfully")
    ctx.event("Normal", c.COND_COMPLETED, "All workers exited successfully")
    ctx.metric(Metrics.job_succeeded)
    _finish(ctx, deps, JobPhase.COMPLETED)


def fail(ctx: JobContext, deps: Deps, reason: str, message: str) -> None:
    """The job cannot go on."""
    ctx.condition(c.COND_RUNNING, "False", c.COND_FAILED, message)
    ctx.condition(c.COND_FAILED, "True", reason, message)
    ctx.event("Warning", c.COND_FAILED, f"{reason}: {message}")
    ctx.metric(Metrics.job_failed)
    _finish(ctx, deps, JobPhase.FAILED)


def _finish(ctx: JobContext, deps: Deps, phase: JobPhase) -> None:
    ctx.status.completion_time = rfc3339(ctx.now)
    ctx.record.finished_at = ctx.now
    ctx.state.move(phase, now=ctx.now)
    clean_up(ctx, deps)


def clean_up(ctx: JobContext, deps: Deps) -> None:
    """Delete pods as ``cleanPodPolicy`` says (spares always), and the job's node memory."""
    policy = ctx.job.spec.run_policy.clean_pod_policy
    succeeded = ctx.state.phase is JobPhase.COMPLETED
    remove_all = policy == "All" or (policy == "OnlyComplete" and succeeded)
    doomed = [p for p in ctx.pods if remove_all or p.record.spare]
    deps.maker.delete(ctx, doomed)
    for pod in doomed:
        deps.hub.forget(pod.name)
    deps.backend.release_job(ctx.namespace, ctx.name, ctx.record.uid)
    if ctx.pods:
        ctx.event("Normal", "PodsKept", f"{len(ctx.pods)} pod(s) kept (cleanPodPolicy {policy})")
    ended = next((x for x in reversed(ctx.status.conditions) if x.status == "True"), None)
    message = ended.message if ended and ended.message else ctx.state.phase.value
    deps.gate.finished(ctx.record, succeeded=succeeded, message=message, now=ctx.now)
    ctx.state.cleaned_up = True
