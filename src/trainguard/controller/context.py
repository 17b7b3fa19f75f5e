"""What one reconcile step of one job works on, and the status/event bookkeeping around it.

A `JobContext` is built from the store and the agents' latest statuses at the start of a step,
changed in memory while the step decides and acts, and written back once at the end: status,
state and the step's rows (`StepWrite`: restarts, pods, node patches, events) in one
`Store.commit_step` — jobset's discipline; metrics follow only that write. Conditions follow
Kubernetes conventions: one entry per type, updated in place, moved to the end when it
transitions, so the last condition is the newest (``Completed`` or ``Failed`` once the job ends).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Concatenate, ParamSpec

from trainguard import constants as c
from trainguard.agent.protocol import AgentState, AgentStatus
from trainguard.backends.gate import OPEN, Admission
from trainguard.clock import rfc3339
from trainguard.controller.state import JobState
from trainguard.controller.timing import Stopwatch
from trainguard.metrics import Metrics, Observation
from trainguard.policy.restart import RestartHistory
from trainguard.spec.job import HyperPodPyTorchJob
from trainguard.spec.status import Condition, ConditionStatus, JobStatus
from trainguard.store.base import StepWrite
from trainguard.store.records import (
    EventRecord,
    JobRecord,
    NodeRecord,
    PodRecord,
    restart_history,
)

P = ParamSpec("P")


@dataclass
class PodView:
    """A pod with what the controller last knew about its process and agent."""

    record: PodRecord
    alive: bool
    status: AgentStatus | None = None
    status_error: str | None = None
    failure: str | None = None
    """Why the pod's container ended or cannot start (`Backend.pod_failure`), when known."""

    @property
    def name(self) -> str:
        """The pod's name."""
        return self.record.name

    @property
    def agent_state(self) -> AgentState | None:
        """The agent's lifecycle state, if the agent answered."""
        return self.status.status if self.status else None

    @property
    def never_ready(self) -> bool:
        """Its agent was never seen ready: the pod failed to start, if it is lost."""
        return self.agent_state in (None, AgentState.INIT)

    @property
    def active(self) -> bool:
        """Holds a node rank (spare pods wait without one)."""
        return self.record.node_rank is not None and not self.record.spare


@dataclass
class JobContext:
    """The working set of one reconcile step of one job."""

    record: JobRecord
    job: HyperPodPyTorchJob
    state: JobState
    status: JobStatus
    pods: list[PodView]
    nodes: dict[str, NodeRecord]
    now: float
    """Wall-clock seconds: for stamps people read (conditions, events, status times)."""
    events: list[EventRecord] = field(default_factory=list)
    metrics: list[Observation] = field(default_factory=list)
    """Metric calls queued by the step, applied after its status write (`metric`)."""
    mono: float = 0.0
    """Monotonic seconds at the step's start: for every interval (`since`)."""
    stopwatch: Stopwatch = field(default_factory=Stopwatch)
    write: StepWrite = field(default_factory=StepWrite)
    """Rows this step writes with the job's status (`Store.commit_step`)."""
    admission: Admission = OPEN
    """The admission gate's answer this step; its node selectors and tolerations go on every
    pod the step creates (`trainguard.controller.suspension`)."""

    @property
    def history(self) -> RestartHistory:
        """The job's restart history, with the restarts of this step."""
        return restart_history([*self.record.restarts, *self.write.restarts])

    @property
    def namespace(self) -> str:
        """The job's namespace."""
        return self.record.namespace

    @property
    def name(self) -> str:
        """The job's name."""
        return self.record.name

    @property
    def active_pods(self) -> list[PodView]:
        """Pods holding a node rank, by rank."""
        return sorted((p for p in self.pods if p.active), key=lambda p: p.record.node_rank or 0)

    @property
    def size(self) -> int:
        """Node ranks the job runs with: its elastic size, else the spec's replicas."""
        return self.state.size or self.job.spec.total_replicas

    @property
    def spare_pods(self) -> list[PodView]:
        """Hot-spare pods waiting for a rank."""
        return [p for p in self.pods if p.record.spare]

    def since(self, stamp: float) -> float:
        """Seconds since the wall-clock ``stamp``, immune to clock steps (see `Stopwatch`)."""
        return self.stopwatch.elapsed(self.record.uid, stamp, wall=self.now, mono=self.mono)

    def stamps(self) -> list[float | None]:
        """Every wall-clock stamp of the job that some timeout or window measures from."""
        fault = self.state.fault
        return [
            self.state.phase_since,
            self.state.first_running_at,
            self.record.created_at,
            self.record.finished_at,
            fault.detected_at if fault else None,
            fault.observed_at if fault else None,
            fault.resize.began_at if fault and fault.resize else None,
            *self.history.plr_times,
        ]

    def event(
        self, type_: str, reason: str, message: str, *, kind: str = "Job", name: str = ""
    ) -> None:
        """Queue an event; it is written after the status write succeeds."""
        self.events.append(
            EventRecord(kind, self.namespace if kind != "Node" else "", name or self.name, type_,
                        reason, message, self.now, c.CONTROLLER_COMPONENT)
        )  # fmt: skip

    def condition(self, type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        """Set a condition; a changed one moves to the end with a new transition time."""
        set_condition(self.status, type_, status, reason, message, now=self.now)

    def metric(
        self,
        observe: Callable[Concatenate[Metrics, P], None],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> None:
        """Queue ``observe(metrics, *args, **kwargs)``, applied after the status write.

        ``observe`` is a `Metrics` method (``ctx.metric(Metrics.job_failed)``), so mypy checks
        the metric's name and arguments; anything else raises at once, not at the write.

        Raises:
            TypeError: ``observe`` is not a method of `Metrics`.
        """
        name = getattr(observe, "__name__", None)
        if not isinstance(name, str) or getattr(Metrics, name, None) is not observe:
            raise TypeError(f"{observe!r} is not a Metrics method")
        self.metrics.append(lambda metrics: observe(metrics, *args, **kwargs))


def set_condition(
    status: JobStatus, type_: str, value: ConditionStatus, reason: str, message: str, *, now: float
) -> None:
    """Kubernetes-style condition update on ``status``."""
    current = next((x for x in status.conditions if x.type == type_), None)
    if current and (current.status, current.reason, current.message) == (value, reason, message):
        current.last_probe_time = rfc3339(now)
        return
    changed = current is None or current.status != value
    stamp = rfc3339(now) if changed or current is None else current.last_transition_time
    status.conditions = [x for x in status.conditions if x.type != type_]
    status.conditions.append(
        Condition(type=type_, status=value, reason=reason, message=message,
                  last_transition_time=stamp, last_probe_time=rfc3339(now))
    )  # fmt: skip


def condition_true(status: JobStatus, type_: str) -> bool:
    """Whether condition ``type_`` is present and True."""
    return any(x.type == type_ and x.status == "True" for x in status.conditions)


def condition_is(status: JobStatus, type_: str, reason: str, message: str) -> bool:
    """Whether condition ``type_`` already carries ``reason`` and ``message``."""
    return any(x.type == type_ and (x.reason, x.message) == (reason, message)
               for x in status.conditions)  # fmt: skip
