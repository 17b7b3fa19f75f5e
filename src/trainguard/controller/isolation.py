"""Fail one job, not the controller, when reconciling it raised something we did not expect.

`TrainguardError`s are our own, named failures and a step retries them. Anything else — a
``ValueError`` from ``subprocess.Popen`` refusing an env value with a NUL byte, an ``OSError``
from the kernel, a bug — used to escape ``Controller.step`` and kill the controller, and since
the same job was reconciled again on every start, the controller could never run again and every
other job stayed Pending. Here such an exception fails *that* job (condition ``Failed`` with
reason ``ReconcileError`` and a Warning event naming the job and the exception); the traceback
goes to the controller's log once per job, and the loop carries on with the other jobs.

The job is failed through the normal path (`lifecycle.fail`: conditions, event, clean-up of its
pods, one status write) when it can still be observed; when even that raises (a manifest in the
store the models refuse, a backend that cannot delete), the failure is written bare, straight
to the job's status and state.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from trainguard import constants as c
from trainguard.controller.context import set_condition
from trainguard.controller.lifecycle import fail
from trainguard.controller.state import TERMINAL, JobPhase
from trainguard.errors import ConflictError, LeaseLostError, NotFoundError
from trainguard.metrics import Metrics
from trainguard.store.base import StepWrite
from trainguard.store.records import EventRecord, JobRecord

if TYPE_CHECKING:
    from trainguard.controller.reconciler import Reconciler

log = logging.getLogger(__name__)

MAX_ERROR_TEXT = 512
"""Characters of an exception's text kept in the job's condition and event: the text may quote
a manifest value of any size (a 200 kB env value), and events are read by people."""


def describe(exc: BaseException) -> str:
    """``ExceptionType: text``, cut to `MAX_ERROR_TEXT` characters."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 3] + "..."


def fail_unexpected(reconciler: Reconciler, record: JobRecord, exc: Exception) -> JobPhase | None:
    """Fail ``record``'s job because reconciling it raised ``exc``; returns its phase."""
    message = f"reconciling job {record.key} raised {describe(exc)}"
    if record.deletion_requested:
        _delete_bare(reconciler, record)
        return None
    if record.state.phase in TERMINAL and record.state.cleaned_up:
        return record.state.phase  # failed already: nothing left to do, no event every step
    try:
        ctx = reconciler.observe(record)
        terminal = ctx.state.phase in TERMINAL
        if terminal and ctx.state.cleaned_up:
            return ctx.state.phase  # failed already: nothing left to do, no event every step
        ctx.event("Warning", c.REASON_RECONCILE_ERROR, message)
        if not ctx.state.announced:
            ctx.state.announced = True
            ctx.metric(Metrics.job_created)
        if terminal:
            ctx.state.cleaned_up = True  # a clean-up that raises is not retried every step
        else:
            fail(ctx, reconciler.deps, c.REASON_RECONCILE_ERROR, message)
        reconciler.write(ctx)
        return ctx.state.phase
    except LeaseLostError:
        raise
    except Exception:
        log.exception(
            "job %s: failing it through the normal path raised; failing it bare", record.key
        )
    return _fail_bare(reconciler, record, message)


def _delete_bare(reconciler: Reconciler, record: JobRecord) -> None:
    """Delete a job that cannot be reconciled: its pods' processes, its memory, its record.

    `job delete` and `cluster down` must work for such a job too (its manifest may be what the
    models refuse, so the normal path, which observes the job first, raises again)."""
    deps = reconciler.deps
    pods = deps.store.list_pods(record.namespace, record.name)
    if pods:
        deps.maker.guard()  # fenced like every deletion: only the lease holder kills processes
    for pod in pods:
        deps.backend.delete_pod(pod, grace=0)
        deps.hub.forget(pod.name)
    deps.backend.release_job(record.namespace, record.name, record.uid)
    deps.store.remove_job(record.namespace, record.name)
    reconciler.stopwatch.forget(record.uid)
    reconciler.metrics.job_deleted()
    reconciler.metrics.forget_job(record.key)


def _fail_bare(reconciler: Reconciler, record: JobRecord, message: str) -> JobPhase | None:
    """Write Failed into the job's status and state without touching pods or the backend."""
    now = reconciler.clock.wall()
    state, status = record.state, record.status
    if state.phase in TERMINAL and state.cleaned_up:
        return state.phase
    if state.phase not in TERMINAL:
        set_condition(status, c.COND_RUNNING, "False", c.COND_FAILED, message, now=now)
        set_condition(status, c.COND_FAILED, "True", c.REASON_RECONCILE_ERROR, message, now=now)
        state.phase, state.phase_since, record.finished_at = JobPhase.FAILED, now, now
    state.cleaned_up = True
    event = EventRecord(
        "Job", record.namespace, record.name, "Warning", c.REASON_RECONCILE_ERROR, message, now,
        c.CONTROLLER_COMPONENT,
    )  # fmt: skip
    try:
        reconciler.deps.store.commit_step(record, StepWrite(events=[event]))
    except (ConflictError, NotFoundError) as exc:
        log.info("job %s changed while failing it (%s); the next step re-reads it", record.key, exc)
        return None
    return state.phase
