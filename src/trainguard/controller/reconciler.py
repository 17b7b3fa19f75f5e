"""One controller step for one job: observe, act through the phase handler, write once.

The write discipline is jobset's: the job's status and the controller's state go to the store
in one write at the end of the step (with an optimistic version check, so a concurrent ``job
delete`` is never overwritten); events and metrics follow only after that write succeeded.
"""

from __future__ import annotations

import logging

from trainguard.clock import Clock
from trainguard.controller.context import JobContext, PodView
from trainguard.controller.deps import Deps
from trainguard.controller.faults import inject, parse_fault
from trainguard.controller.lifecycle import fail
from trainguard.controller.phases import HANDLERS
from trainguard.controller.state import TERMINAL, JobPhase, JobState
from trainguard.errors import ConflictError, NotFoundError, TrainguardError
from trainguard.metrics import Metrics
from trainguard.spec.job import HyperPodPyTorchJob
from trainguard.spec.status import JobStatus
from trainguard.store.records import JobRecord, NodeRecord, PodRecord

log = logging.getLogger(__name__)
_GONE = frozenset({JobPhase.DELETING})
MAX_CHAINED_PHASES = 3
"""A step that moves the job on runs the next phase's handler at once (a fault is acted on in
the step that saw it), at most this many times."""


class Reconciler:
    """Runs one step for one job (see `reconcile`)."""

    def __init__(self, deps: Deps, *, clock: Clock, metrics: Metrics) -> None:
        self.deps, self.clock, self.metrics = deps, clock, metrics
        self._specs: dict[str, HyperPodPyTorchJob] = {}

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
        ctx = self.observe(record, nodes=nodes, pods=pods)
        if not ctx.state.announced:
            ctx.state.announced = True
            ctx.metric("created")
        if not (record.deletion_requested or ctx.state.phase is JobPhase.DELETING):
            self._step(ctx)
        if record.deletion_requested or ctx.state.phase in _GONE:
            self._delete(ctx)
            return None
        self.write(ctx)
        return ctx.state.phase

    def _step(self, ctx: JobContext) -> None:
        if ctx.state.phase not in TERMINAL:
            self._check_deadlines(ctx)
        if ctx.state.phase is JobPhase.RUNNING:
            self._inject_requested_faults(ctx)
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
        job = self._spec(record)
        state = JobState.model_validate(record.state)
        status = JobStatus.model_validate(record.status)
        if pods is None:
            pods = self.deps.store.list_pods(record.namespace, record.name)
        self.deps.hub.refresh(pods, state.token, max_age=self.deps.settings.poll_interval)
        views = []
        for pod in pods:
            seen = self.deps.hub.seen(pod.name)
            views.append(
                PodView(
                    pod,
                    self.deps.backend.pod_alive(pod),
                    seen.status if seen else None,
                    seen.error if seen else None,
                )
            )
        if nodes is None:
            nodes = {n.name: n for n in self.deps.backend.list_nodes()}
        return JobContext(record, job, state, status, views, nodes, self.clock.wall())

    def write(self, ctx: JobContext) -> None:
        """One write of status + state (none if nothing changed), then events, then metrics."""
        status, state = ctx.status.to_manifest(), ctx.state.model_dump(mode="json")
        unchanged = status == ctx.record.status and state == ctx.record.state
        ctx.record.status, ctx.record.state = status, state
        if ctx.events or not unchanged:
            try:
                self.deps.store.save_job(ctx.record)
            except (ConflictError, NotFoundError) as exc:
                log.info(
                    "job %s changed during the step (%s); the next step re-reads it",
                    ctx.record.key,
                    exc,
                )
                return
            if ctx.events:
                self.deps.store.add_events(ctx.events)
        for name, value in ctx.metrics:
            self.metrics.observe(name, value)

    def _spec(self, record: JobRecord) -> HyperPodPyTorchJob:
        cached = self._specs.get(record.uid)
        if cached is None:
            cached = HyperPodPyTorchJob.model_validate(record.manifest)
            self._specs[record.uid] = cached
        return cached

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
                ctx.record.created_at if started is None else None,
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
            if limit is not None and since is not None and ctx.now - since > limit:
                fail(ctx, self.deps, reason, f"{field} ({limit}s) exceeded")
                return

    def _inject_requested_faults(self, ctx: JobContext) -> None:
        store = self.deps.store
        for request in store.pending_fault_requests():
            if (request.namespace, request.job) != (ctx.namespace, ctx.name):
                continue
            try:
                spec = parse_fault(request.spec)
                since = max(request.created_at, ctx.state.first_running_at or ctx.now)
                if ctx.now - since < spec.after:
                    continue
                result = inject(spec, ctx, backend=self.deps.backend, store=store)
                ctx.event("Normal", "FaultInjected", f"{spec.render()}: {result}")
            except TrainguardError as exc:
                result = f"not injected: {exc}"
                ctx.event("Warning", "FaultNotInjected", f"{request.spec}: {exc}")
            store.complete_fault_request(request.id, result=result, now=ctx.now)

    def _delete(self, ctx: JobContext) -> None:
        doomed = list(ctx.pods)
        self.deps.maker.delete(ctx, doomed)
        for pod in doomed:
            self.deps.hub.forget(pod.name)
        self.deps.backend.release_job(ctx.namespace, ctx.name, ctx.record.uid)
        for request in self.deps.store.pending_fault_requests():
            if (request.namespace, request.job) == (ctx.namespace, ctx.name):
                self.deps.store.complete_fault_request(
                    request.id, result="job deleted", now=ctx.now
                )
        self.deps.store.remove_job(ctx.namespace, ctx.name)
        self._specs.pop(ctx.record.uid, None)
        self.metrics.observe("deleted", 1)
