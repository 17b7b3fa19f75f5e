"""Suspend and resume a job: ``runPolicy.suspend`` and its queue's admission (Kueue).

Each step, before the phase handler runs, `hold` asks whether the job may have pods now:
not when ``runPolicy.suspend`` is true (any backend), and not while its queue manager has not
admitted it or has evicted it (`AdmissionGate`; Kueue's Workload on Kubernetes). A held job:

- that has no pods yet waits in ``Pending`` with the condition ``Suspended=True`` (why: the
  queue, or ``runPolicy.suspend``);
- that has pods is stopped: its agents' last checkpoint reports are kept, every pod is
  deleted, and it waits in ``Suspended`` — a decision of the scheduler, not a fault, so no
  restart is counted and no restart window is spent. Once its pods are gone the gate is told
  (`AdmissionGate.released`), so Kueue can give its quota to the job that evicted it.

When it may run again the job goes back to ``Pending``: the next step creates its pods (ranks
on their previous nodes where they still fit) and ``/start`` carries the newest step every
rank held, so training resumes from its newest checkpoint (the memory tier where the node kept
it, else the durable tier: on Kubernetes a deleted pod's ``emptyDir`` memory goes with it).

Deadlines do not run while a job is held, and start over when it may run, as a Kubernetes
Job's ``startTime`` is reset on resume: ``activeDeadlineSeconds`` counts from the next
``Running``, ``startupDeadlineSeconds`` from the admission (time in the queue is not startup).
"""

from __future__ import annotations

from trainguard import constants as c
from trainguard.backends.gate import Admission
from trainguard.controller.context import JobContext, condition_true
from trainguard.controller.deps import Deps
from trainguard.controller.held_steps import remember
from trainguard.controller.state import TERMINAL, JobPhase

SUSPEND_FLAG = Admission(admitted=False, reason="Suspended", message="runPolicy.suspend is true")


def hold(ctx: JobContext, deps: Deps) -> bool:
    """Ask the gate; stop or keep back a job that may not run, resume one that may again.

    Returns:
        True when the job is held: the step's phase handler must not run.
    """
    if ctx.state.phase in TERMINAL or ctx.state.phase is JobPhase.DELETING:
        return False
    ctx.admission = _admission(ctx, deps)
    if ctx.admission.admitted:
        if ctx.state.phase is JobPhase.SUSPENDED or condition_true(ctx.status, c.COND_SUSPENDED):
            _resume(ctx)
        return False
    if ctx.state.phase is JobPhase.PENDING:
        _mark_suspended(ctx, ctx.admission)
    else:
        _stop(ctx, deps, ctx.admission)
    return True


def _admission(ctx: JobContext, deps: Deps) -> Admission:
    if ctx.job.spec.run_policy.suspend:
        return SUSPEND_FLAG
    return deps.gate.admission(ctx.record, now=ctx.now)


def _stop(ctx: JobContext, deps: Deps, why: Admission) -> None:
    """Delete every pod (keeping what they last said they hold); release once all are gone."""
    if ctx.state.phase is not JobPhase.SUSPENDED:
        ctx.state.progress = remember(ctx.state.progress, ctx.active_pods)
        ctx.state.fault = None
        ctx.state.awaiting_first_step = None
        ctx.state.pending_ranks = []
        ctx.event("Normal", c.REASON_SUSPENDED, f"Stopping {len(ctx.pods)} pod(s): {_why(why)}")
        ctx.condition(c.COND_RUNNING, "False", c.REASON_SUSPENDED, _why(why))
        ctx.state.move(JobPhase.SUSPENDED, now=ctx.now)
    _mark_suspended(ctx, why)
    doomed = list(ctx.pods)
    deps.maker.delete(ctx, doomed)
    for pod in doomed:
        deps.hub.forget(pod.name)
    if not doomed:
        deps.gate.released(ctx.record, now=ctx.now)


def _mark_suspended(ctx: JobContext, why: Admission) -> None:
    ctx.condition(c.COND_SUSPENDED, "True", why.reason, _why(why))


def _resume(ctx: JobContext) -> None:
    """Admitted again: back to Pending, whose handler creates the pods in this same step."""
    ctx.condition(c.COND_SUSPENDED, "False", c.REASON_RESUMED, "The job may run")
    ctx.state.first_running_at, ctx.state.resumed_at = None, ctx.now  # deadlines start over
    if ctx.state.phase is JobPhase.SUSPENDED:
        ctx.event("Normal", c.REASON_RESUMED, "Admitted again: recreating the pods")
        key = str(ctx.state.fault_count)
        ctx.state.resumes_recorded = [k for k in ctx.state.resumes_recorded if k != key]
        ctx.state.move(JobPhase.PENDING, now=ctx.now)


def _why(admission: Admission) -> str:
    return f"{admission.reason}: {admission.message}" if admission.message else admission.reason
