"""One controller step for one job: observe, act through the phase handler, write once.

The write discipline is jobset's: the job's status, the controller's state and the step's rows
(restarts, pod rows, node patches, events: `StepWrite`) go to the store in one
`Store.commit_step` at the end of the step, with an optimistic version check so a concurrent
``job delete`` is never overwritten; metrics follow only after that write succeeded. When the
write is refused, the pods the step launched are deleted again: their rows never landed, and
the local backend finds pods only through their rows, so they would run on untracked.
"""

from __future__ import annotations

import logging

from trainguard.clock import Clock
from trainguard.controller.admission import admit, needs_admission
from trainguard.controller.checkpoints import record_checkpoint_failures
from trainguard.controller.context import JobContext, PodView
from trainguard.controller.deps import Deps
from trainguard.controller.goodput import track_goodput
from trainguard.controller.lifecycle import fail
from trainguard.controller.phases import HANDLERS
from trainguard.controller.reported_metrics import queue_reported_metrics
from trainguard.controller.state import TERMINAL, JobPhase
from trainguard.controller.suspension import hold
from trainguard.controller.timing import Stopwatch
from trainguard.errors import ConflictError, CorruptRecord, NotFoundError
from trainguard.metrics import Metrics
from trainguard.store.base import StepWrite
from trainguard.store.records import EventRecord, JobRecord, NodeRecord, PodRecord

log = logging.getLogger(__name__)
_GONE = frozenset({JobPhase.DELETING})
MAX_CHAINED_PHASES = 3
"""A step that moves the job on runs the next phase's handler at once (a fault is acted on in
the step that saw it), at most this many times."""


def _nothing_to_act_on(record: JobRecord, admitted: list[EventRecord]) -> bool:
    """A finished job without a usable manifest (just refused at admission, or failed already
    for a broken one) and not being deleted."""
    finished = record.state.phase in TERMINAL and record.state.cleaned_up
    return finished and bool(admitted or record.defects) and not record.deletion_requested


class Reconciler:
    """Runs one step for one job (see `reconcile`)."""

    def __init__(self, deps: Deps, *, clock: Clock, metrics: Metrics) -> None:
        self.deps, self.clock, self.metrics = deps, clock, metrics
        self.stopwatch = Stopwatch()

    def reconcile(
        self,
        record: JobRecord,
        *,
        nodes: dict[str, NodeRecord] | None = None,
        pods: list[PodRecord] | None = None,
    ) -> JobPhase | None:
        """Step ``record``'s job once; returns its phase afterwards (None once removed).

        Args:
            record: the job as read from the store.
            nodes: the nodes, when the caller read them once for many jobs.
            pods: the job's pods, when the caller read them once for many jobs.
        """
        admitted: list[EventRecord] = []
        if needs_admission(record) and not record.deletion_requested:
            admitted = admit(record, now=self.clock.wall())
        if _nothing_to_act_on(record, admitted):
            return self._rejected(record, admitted)
        ctx = self.observe(record, nodes=nodes, pods=pods)
        ctx.events.extend(admitted)
        if not ctx.state.announced:
            ctx.state.announced = True
            ctx.metric(Metrics.job_created)
        if not (record.deletion_requested or ctx.state.phase is JobPhase.DELETING):
            self._step(ctx)
        if record.deletion_requested or ctx.state.phase in _GONE:
            self._delete(ctx)
            return None
        self.stopwatch.note(record.uid, ctx.stamps(), wall=ctx.now, mono=ctx.mono)
        self.write(ctx)
        return ctx.state.phase

    def _rejected(self, record: JobRecord, events: list[EventRecord]) -> JobPhase:
        """A finished job with no manifest to act on (refused at admission, or stored broken
        and failed already): write the refusal once, then leave it be."""
        if events:
            self.deps.store.commit_step(record, StepWrite(events=events))
            self.metrics.job_failed()
        return record.state.phase

    def _step(self, ctx: JobContext) -> None:
        record_checkpoint_failures(ctx)
        queue_reported_metrics(ctx)
        seen = ctx.active_pods
        held = hold(ctx, self.deps)  # a held job's deadlines do not run (`suspension`)
        if not held and ctx.state.phase not in TERMINAL:
            self._check_deadlines(ctx)
            seen = ctx.active_pods
        if not held:
            self._run_handlers(ctx)
        track_goodput(ctx, seen=seen)

    def _run_handlers(self, ctx: JobContext) -> None:
        for _ in range(MAX_CHAINED_PHASES):
            before = ctx.state.phase
            handler = HANDLERS.get(before)
            if handler is not None:
                handler(ctx, self.deps)
            if ctx.state.phase is before or ctx.state.phase in TERMINAL:
                return

    def observe(
        self,
        record: JobRecord,
        *,
        nodes: dict[str, NodeRecord] | None = None,
        pods: list[PodRecord] | None = None,
    ) -> JobContext:
        """Build the step's context from the store, the backend and the agents."""
        if record.defects:
            raise CorruptRecord("; ".join(record.defects))
        state, status = record.state, record.status
        if pods is None:
            pods = self.deps.store.list_pods(record.namespace, record.name)
        self.deps.hub.refresh(pods, state.token, max_age=self.deps.settings.poll_interval)
        views = []
        for pod in pods:
            seen = self.deps.hub.seen(pod.name)
            view = PodView(
                pod,
                self.deps.backend.pod_alive(pod),
                seen.status if seen else None,
                seen.error if seen else None,
            )
            if not view.alive or view.never_ready:
                view.failure = self.deps.backend.pod_failure(pod)
            views.append(view)
        if nodes is None:
            nodes = {n.name: n for n in self.deps.backend.list_nodes()}
        return JobContext(
            record, record.job, state, status, views, nodes, self.clock.wall(),
            mono=self.clock.monotonic(), stopwatch=self.stopwatch,
        )  # fmt: skip

    def write(self, ctx: JobContext) -> None:
        """One `Store.commit_step` of status, state and the step's rows (none if nothing
        changed), then metrics; a refused write deletes the pods the step launched."""
        ctx.record.status, ctx.record.state = ctx.status, ctx.state
        ctx.write.events.extend(ctx.events)
        try:
            self.deps.store.commit_step(ctx.record, ctx.write)
        except (ConflictError, NotFoundError) as exc:
            log.info(
                "job %s changed during the step (%s); the next step re-reads it",
                ctx.record.key,
                exc,
            )
            self._drop_launched(ctx)
            return
        for observe in ctx.metrics:
            observe(self.metrics)

    def _drop_launched(self, ctx: JobContext) -> None:
        """Delete the processes of pods launched in a step whose write was refused."""
        for pod in ctx.write.launched:
            self.deps.backend.delete_pod(pod, grace=0)
            self.deps.hub.forget(pod.name)

    def _check_deadlines(self, ctx: JobContext) -> None:
        policy = ctx.job.spec.run_policy
        started = ctx.state.first_running_at
        checks = [
            (
                policy.active_deadline_seconds,
                started,
                "ActiveDeadlineExceeded",
                "activeDeadlineSeconds",
            ),
            (
                policy.startup_deadline_seconds,
                max(ctx.record.created_at, ctx.state.resumed_at or 0) if started is None else None,
                "StartupDeadlineExceeded",
                "startupDeadlineSeconds",
            ),
            (
                policy.fault_deadline_seconds,
                ctx.state.fault.observed_at if ctx.state.fault else None,
                "FaultDeadlineExceeded",
                "faultDeadlineSeconds",
            ),
        ]
        for limit, since, reason, field in checks:
            if limit is not None and since is not None and ctx.since(since) > limit:
                fail(ctx, self.deps, reason, f"{field} ({limit}s) exceeded")
                return

    def _delete(self, ctx: JobContext) -> None:
        doomed = list(ctx.pods)
        self.deps.maker.delete(ctx, doomed)
        for pod in doomed:
            self.deps.hub.forget(pod.name)
        self.deps.backend.release_job(ctx.namespace, ctx.name, ctx.record.uid)
        self.deps.store.remove_job(ctx.namespace, ctx.name)
        self.stopwatch.forget(ctx.record.uid)
        self.metrics.job_deleted()
        self.metrics.forget_job(ctx.record.key)
