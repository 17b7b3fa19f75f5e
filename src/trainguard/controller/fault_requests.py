"""Requested faults: when each is due, and an outcome for every one of them (`FaultInjector`).

A fault asked for with ``run --fault`` or ``fault inject`` is a test the person means to run;
one that silently never fired made a job that ended before it look tested (issue 13). So every
request ends with an outcome in the store: injected (with the time and what was done) or not
injected with the reason — the job ended first, the target was gone — and a
``FaultNotInjected`` warning event. ``trainguard run`` turns the latter into its exit code.

The injector runs *beside* the reconcile step, not inside it: `Controller.step` calls
`FaultInjector.step` after every job was reconciled. It reads jobs, pods and the agents'
latest statuses through the `Store` protocol and the `AgentHub`, acts through the backend
(`trainguard.controller.fault_injection`) and writes only its own rows — a request's timing
facts and outcome, and its events — so a fault never rides on a job's status write, and the
reconciler holds no fault state.

Timing counts from the job's first *training step*, not from ``Running``: the injector learns
of training from the agents — a worker's resume report (sent by `trainguard.checkpoint` once it
loaded its checkpoint or found none), the steps a script reports (``report_step``), the
checkpoint steps each agent holds, or a log rule leaving ``WAITING`` (a line matched;
HyperPod's rules watch the step lines). The first time it sees training while a request is
pending, and the newest step reported since, are kept on the request's row
(`FaultRequest.training_at`, `.reported_step`), so a restarted controller carries on. A job
whose workers show none of these never starts the clock, and its faults end "not injected"
with that reason rather than firing at a guess. ``at-step=N`` waits for the newest reported
step to reach N: the exact step where the script reports its steps (reports reach the
controller with its poll, so a fault may land a few steps later), else the first checkpoint at
or after N — which is also the step a restart resumes from. A script that reports no step at
all (one that checkpoints with HyperPod's MTC library directly) never makes ``at-step`` due:
its request ends "not injected" naming that cause (`steps_never_reported`), and ``fault
inject`` says so while it waits; such faults are timed with ``after=``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace

from trainguard import constants as c
from trainguard.agent.protocol import AgentState
from trainguard.backends.base import Backend
from trainguard.clock import Clock
from trainguard.controller.agents import AgentHub
from trainguard.controller.context import PodView
from trainguard.controller.fault_injection import inject
from trainguard.controller.held_steps import held_steps
from trainguard.controller.state import TERMINAL, JobPhase
from trainguard.controller.timing import Stopwatch
from trainguard.errors import TrainguardError
from trainguard.policy.log_rules import RuleState
from trainguard.store.base import Store
from trainguard.store.records import EventRecord, FaultOutcome, FaultRequest, JobRecord

log = logging.getLogger(__name__)
SETTLED = frozenset({AgentState.RUNNING, AgentState.COMPLETED})
"""Agent states whose reported worker pids are current (a completed agent's are of exited
workers, which the executor refuses with that reason); any other state — faulted, stopping,
ready — is a restart on its way, so a due fault waits for the next step."""


class FaultInjector:
    """Injects the store's pending fault requests when due; records every outcome.

    Args:
        store: where requests, jobs and pods are read and outcomes written.
        backend: what executors act through (signals, node health).
        hub: the agents' latest statuses (worker pids, training reports).
        clock: time source; intervals are measured on its monotonic clock (`Stopwatch`).
    """

    def __init__(self, *, store: Store, backend: Backend, hub: AgentHub, clock: Clock) -> None:
        self.store, self.backend, self.hub, self.clock = store, backend, hub, clock
        self.stopwatch = Stopwatch()

    def step(self, jobs: Iterable[JobRecord]) -> None:
        """Act on the pending requests of ``jobs`` (as the reconcile step left them); a job
        that was removed took its requests with it."""
        pending: dict[str, list[FaultRequest]] = defaultdict(list)
        for request in self.store.pending_fault_requests():
            pending[f"{request.namespace}/{request.job}"].append(request)
        for record in jobs:
            requests = pending.get(record.key)
            if requests:
                self._job(record, requests)

    def _job(self, record: JobRecord, requests: list[FaultRequest]) -> None:
        phase = record.state.phase
        if phase in TERMINAL:
            for request in requests:
                self._give_up(request, ended_reason(phase, request))
        elif phase is JobPhase.RUNNING and not record.deletion_requested:
            pods = self._pods(record)
            training, step = training_reported(pods)
            settled = all(p.agent_state in SETTLED for p in pods)
            for request in requests:
                self._consider(self._note(request, training, step), pods, settled=settled)

    def _pods(self, record: JobRecord) -> list[PodView]:
        """The job's active pods by node rank, with their agents' latest statuses."""
        views = []
        for pod in self.store.list_pods(record.namespace, record.name):
            seen = self.hub.seen(pod.name)
            if pod.node_rank is not None and not pod.spare:
                views.append(PodView(pod, True, seen.status if seen else None))  # alive: unused
        return sorted(views, key=lambda p: p.record.node_rank or 0)

    def _note(self, request: FaultRequest, training: bool, step: int | None) -> FaultRequest:
        """``request`` with the training seen now folded in (and stored, when it changed)."""
        training_at = request.training_at
        if training and training_at is None:
            training_at = self.clock.wall()
        reported = request.reported_step if step is None else max(request.reported_step or 0, step)
        if (training_at, reported) == (request.training_at, request.reported_step):
            return request
        self.store.note_fault_training(request.id, training_at=training_at, reported_step=reported)
        return replace(request, training_at=training_at, reported_step=reported)

    def _consider(self, request: FaultRequest, pods: Sequence[PodView], *, settled: bool) -> None:
        try:
            if not self._due(request) or not settled:
                return  # not due, or an agent's status is between two runs of its workers
            result = inject(request.spec, pods, backend=self.backend)
        except TrainguardError as exc:
            self._give_up(request, str(exc))
            return
        when = f"at step {request.reported_step}" if request.reported_step else "at start"
        message = f"{request.spec.render()} {when}: {result}"
        self._close(request, FaultOutcome.INJECTED, f"{result} ({when})", "Normal", message)

    def _due(self, request: FaultRequest) -> bool:
        """Training was reported, ``after`` seconds passed since then (or since the request,
        if later) and the reported step reached ``at-step``."""
        started = request.training_at
        if started is None:
            return False
        if self._since(request, max(request.created_at, started)) < request.spec.after:
            return False
        at_step = request.spec.at_step
        return at_step is None or (request.reported_step or 0) >= at_step

    def _since(self, request: FaultRequest, stamp: float) -> float:
        owner = f"fault-request/{request.id}"
        return self.stopwatch.elapsed(
            owner, stamp, wall=self.clock.wall(), mono=self.clock.monotonic()
        )

    def _give_up(self, request: FaultRequest, reason: str) -> None:
        message = f"{request.spec.render()}: not injected: {reason}"
        self._close(request, FaultOutcome.NOT_INJECTED, reason, "Warning", message)

    def _close(
        self, request: FaultRequest, outcome: FaultOutcome, result: str, type_: str, message: str
    ) -> None:
        """Record the outcome, then its event (status first, then events)."""
        now = self.clock.wall()
        self.store.complete_fault_request(request.id, outcome=outcome, result=result, now=now)
        self.stopwatch.forget(f"fault-request/{request.id}")
        reason = (
            c.REASON_FAULT_INJECTED if outcome is FaultOutcome.INJECTED
            else c.REASON_FAULT_NOT_INJECTED
        )  # fmt: skip
        self.store.add_events(
            [EventRecord("Job", request.namespace, request.job, type_, reason, message, now,
                         c.CONTROLLER_COMPONENT)]
        )  # fmt: skip


def training_reported(pods: Sequence[PodView]) -> tuple[bool, int | None]:
    """Whether any agent reports training, and the newest step reported now (if any)."""
    steps: list[int] = []
    reported = False
    for pod in pods:
        extra = pod.status.trainguard if pod.status else None
        if extra is not None and extra.resume is not None:
            reported = True
            steps.extend([extra.resume.step] if extra.resume.step is not None else [])
        if extra is not None and extra.training is not None:
            reported = True  # the script reports its steps (trainguard.checkpoint.report_step)
            steps.append(extra.training.step)
        if extra is not None and any(s != RuleState.WAITING for s in extra.rules.values()):
            reported = True  # a log rule matched: HyperPod's rules watch the step lines
        held = held_steps(pod.status)
        if held:
            reported = True
            steps.extend(held)
    return reported, max(steps) if steps else None


def ended_reason(phase: JobPhase, request: FaultRequest) -> str:
    """Why a pending fault of a job that ended was never injected."""
    ended = f"the job ended ({phase.value})"
    if request.training_at is None:
        return (
            f"{ended} without reporting a training step (no checkpoint or resume report from "
            "trainguard.checkpoint, no log rule matched), so the fault never became due"
        )
    step = request.reported_step
    if request.spec.at_step is not None and step is None:
        return f"{ended}: {steps_never_reported(request.spec.at_step)}"
    return f"{ended}{f' at step {step}' if step is not None else ''} before the fault was due"


def steps_never_reported(at_step: int) -> str:
    """Why ``at-step=`` could not fire for workers that train but report no step."""
    return (
        f"its workers trained but never reported a step, so at-step={at_step} could never "
        "fire: steps come from trainguard.checkpoint (report_step, CheckpointManager saves); "
        "a script that only logs (HyperPod MTC used directly, say) reports none — use after="
    )
