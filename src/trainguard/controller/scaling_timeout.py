"""Abandon a resize that does not reach Running within ``scalingTimeoutInSeconds``.

A grow stops every worker and waits for the new ranks' pods. When a new node takes the pod but
never runs it (an image that does not pull, a missing Secret, a node Schedulable but broken),
the job that trained fine at the smaller size would sit stopped until the controller's ready
timeout, and then pay a counted restart for capacity it never got. With
``elasticPolicy.scalingTimeoutInSeconds`` the resize is given up after that long, counted from
its ``Scale`` restart (`trainguard.policy.elastic.abandon_resize` decides how):

- a grow falls back to the largest allowed size its usable pods can run — normally the size it
  grew from — through another ``Scale`` restart (not counted): the pods that did not start are
  deleted, the rest renumbered, and the scale-up snooze starts again;
- a shrink has nothing smaller to fall back to: it becomes an ordinary fault of reason
  ``ScalingTimedOut``, which `handle_fault` remediates as any fault (a counted process-level
  restart, escalating to a full job restart or failing the job as the restart policy says).

Phase handlers of ``Restarting`` and ``Starting`` call `abandon_if_timed_out` first.
"""

from __future__ import annotations

from trainguard import constants as c
from trainguard.agent.protocol import AgentState
from trainguard.controller.context import JobContext, PodView
from trainguard.controller.deps import Deps
from trainguard.controller.detect import describe_lost, pod_fault, unhealthy_nodes
from trainguard.controller.lifecycle import handle_fault
from trainguard.controller.scaling import begin_resize
from trainguard.policy.elastic import FallBack, abandon_resize, elastic_bounds


def abandon_if_timed_out(ctx: JobContext, deps: Deps) -> bool:
    """Give up the job's resize when it ran past ``scalingTimeoutInSeconds``.

    Returns:
        True when the resize was abandoned (the job restarts; the step is done).
    """
    fault = ctx.state.fault
    bounds = elastic_bounds(ctx.job.spec)
    if fault is None or fault.resize is None or bounds is None:
        return False
    unusable = _unusable(ctx)
    decision = abandon_resize(
        bounds,
        before=fault.resize.before,
        after=ctx.size,
        usable=len(ctx.active_pods) - len(unusable),
        elapsed=ctx.since(fault.resize.began_at),
    )
    if decision is None:
        return False
    summary = (
        f"Scaling from {fault.resize.before} to {ctx.size} node(s) did not reach Running "
        f"within {bounds.scaling_timeout:g} s (scalingTimeoutInSeconds)"
    )
    if isinstance(decision, FallBack):
        _fall_back(ctx, unusable, size=decision.size, summary=summary)
    else:
        _as_fault(ctx, deps, unusable or _not_running(ctx), summary=summary)
    ctx.state.phase_since = ctx.now  # a new restart, maybe from Restarting: its timers restart
    return True


def _fall_back(ctx: JobContext, unusable: list[PodView], *, size: int, summary: str) -> None:
    """Restart at ``size`` (a ``Scale`` restart): the pods that did not start are dropped."""
    described = "; ".join(_describe(p) for p in unusable) or "no pod failed to start"
    ctx.event(
        "Warning",
        c.REASON_SCALING_TIMED_OUT,
        f"{summary} ({described}): falling back to {size} node(s)",
    )
    message = f"the scale-up to {ctx.size} node(s) timed out"
    fault = pod_fault(c.REASON_SCALING_TIMED_OUT, message, unusable, now=ctx.now)
    begin_resize(ctx, fault, size=size, reason=c.REASON_SCALE_DOWN)


def _as_fault(ctx: JobContext, deps: Deps, culprits: list[PodView], *, summary: str) -> None:
    """Hand the stuck resize to the ordinary fault handling (`handle_fault`; counted)."""
    message = f"{summary}: " + ("; ".join(_describe(p) for p in culprits) or "no pod named")
    fault = pod_fault(c.REASON_SCALING_TIMED_OUT, message, culprits, now=ctx.now, replace=False)
    handle_fault(ctx, deps, fault)


def _unusable(ctx: JobContext) -> list[PodView]:
    """Active pods that cannot run workers: lost, never ready, shut down or on a bad node."""
    bad = set(unhealthy_nodes(ctx.pods, ctx.nodes))
    return [
        p
        for p in ctx.active_pods
        if not p.alive
        or p.never_ready
        or p.agent_state is AgentState.SHUTDOWN
        or p.record.node in bad
    ]


def _not_running(ctx: JobContext) -> list[PodView]:
    return [p for p in ctx.active_pods if p.agent_state is not AgentState.RUNNING]


def _describe(pod: PodView) -> str:
    if not pod.alive:
        return describe_lost(pod)
    state = pod.agent_state.value if pod.agent_state else "not answering"
    why = f", {pod.failure}" if pod.failure else ""
    where = f"on {pod.record.node}" if pod.record.node else "not placed on a node"
    return f"{pod.name} {where} ({state}{why})"
