"""What one reconcile step of one job works on, and the status/event bookkeeping around it.

A `JobContext` is built from the store and the agents' latest statuses at the start of a step,
changed in memory while the step decides and acts, and written back once at the end (status
and state in one write, then events — jobset's discipline). Conditions follow Kubernetes
conventions: one entry per type, updated in place, moved to the end when it transitions, so the
last condition is the newest (``Completed`` or ``Failed`` once the job ends).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainguard import constants as c
from trainguard.agent.protocol import AgentState, AgentStatus
from trainguard.clock import rfc3339
from trainguard.controller.state import JobState
from trainguard.spec.job import HyperPodPyTorchJob
from trainguard.spec.status import Condition, ConditionStatus, JobStatus
from trainguard.store.records import EventRecord, JobRecord, NodeRecord, PodRecord


@dataclass
class PodView:
    """A pod with what the controller last knew about its process and agent."""

    record: PodRecord
    alive: bool
    status: AgentStatus | None = None
    status_error: str | None = None

    @property
    def name(self) -> str:
        """The pod's name."""
        return self.record.name

    @property
    def agent_state(self) -> AgentState | None:
        """The agent's lifecycle state, if the agent answered."""
        return self.status.status if self.status else None

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
    events: list[EventRecord] = field(default_factory=list)
    metrics: list[tuple[str, float]] = field(default_factory=list)

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
    def spare_pods(self) -> list[PodView]:
        """Hot-spare pods waiting for a rank."""
        return [p for p in self.pods if p.record.spare]

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

    def metric(self, name: str, value: float = 1.0) -> None:
        """Queue a metric observation, emitted after the status write."""
        self.metrics.append((name, value))


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
