"""The controller's own state of a job, persisted beside the HyperPod-shaped status.

``status`` is what users and HyperPod tooling read; `JobState` is what a controller needs to
carry on after it was killed: the phase of the job's lifecycle, the fault being remediated, the
agents' token, where each rank ran. Phases are an enum with one transition table;
`JobState.move` is the only way to change phase.

It lives in the store package (and `trainguard.controller.state` re-exports it) because a
`JobRecord` carries it typed: the store parses and serialises it, and the store must not import
the controller. The restart history is *not* here: it is the store's restart rows
(`JobRecord.restarts`, `restart_history`), the one place it is kept.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from trainguard.errors import InvalidTransition
from trainguard.policy.goodput import Segment


class JobPhase(StrEnum):
    """Where a job is in its lifecycle (internal; conditions are the public view)."""

    PENDING = "Pending"
    CREATING = "Creating"
    STARTING = "Starting"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    FULL_RESTARTING = "FullRestarting"
    COMPLETED = "Completed"
    FAILED = "Failed"
    DELETING = "Deleting"
    SUSPENDED = "Suspended"
    """No pods: ``runPolicy.suspend`` or the queue manager (Kueue) evicted the job."""


P = JobPhase
_ENDINGS = frozenset({P.FAILED, P.DELETING})
_HOLD = frozenset({P.SUSPENDED}) | _ENDINGS
"""Any phase with pods (or about to have them) may be suspended."""
PHASE_TRANSITIONS: dict[JobPhase, frozenset[JobPhase]] = {
    P.PENDING: frozenset({P.CREATING}) | _HOLD,
    P.CREATING: frozenset({P.STARTING, P.RESTARTING, P.FULL_RESTARTING}) | _HOLD,
    P.STARTING: frozenset({P.RUNNING, P.RESTARTING, P.FULL_RESTARTING, P.COMPLETED}) | _HOLD,
    P.RUNNING: frozenset({P.COMPLETED, P.RESTARTING, P.FULL_RESTARTING}) | _HOLD,
    P.RESTARTING: frozenset({P.STARTING, P.FULL_RESTARTING}) | _HOLD,
    P.FULL_RESTARTING: frozenset({P.CREATING}) | _HOLD,
    P.SUSPENDED: frozenset({P.PENDING}) | _ENDINGS,
    P.COMPLETED: frozenset({P.DELETING}),
    P.FAILED: frozenset({P.DELETING}),
    P.DELETING: frozenset(),
}
TERMINAL = frozenset({P.COMPLETED, P.FAILED})


class Resize(BaseModel):
    """A resize in progress (a restart of kind ``Scale`` to another size)."""

    before: int = Field(description="The size the job ran at before the resize.")
    began_at: float = Field(
        description="When the resize began (epoch s); ``scalingTimeoutInSeconds`` counts from here."
    )


class ActiveFault(BaseModel):
    """The fault being remediated: what, where, since when."""

    reason: str
    message: str
    detected_at: float = Field(description="When the fault happened/was first seen (epoch s).")
    observed_at: float = Field(description="When the controller saw it.")
    restart_type: str = "PLR"
    pods: list[str] = Field(default_factory=list)
    ranks: list[int] = Field(default_factory=list)
    nodes: list[str] = Field(default_factory=list)
    replace: list[str] = Field(default_factory=list, description="Pods to recreate elsewhere.")
    start_failure: bool = Field(
        default=False,
        description="Pods died or hung before their agent became ready: recreating them "
        "waits out `start_backoff` (as the kubelet's CrashLoopBackOff does).",
    )
    resize: Resize | None = Field(
        default=None, description="Set while a Scale restart changes the job's size."
    )


class Remediated(BaseModel):
    """A remediated fault whose first training step after the restart is still awaited."""

    reason: str
    fault_count: int = Field(description="The restart whose first step is awaited.")
    detected_at: float = Field(description="When the fault was detected (epoch s).")
    remediated_ms: int = Field(description="Detection to every agent running, in ms.")


class JobState(BaseModel):
    """Everything the controller must remember about a job across its own restarts."""

    phase: JobPhase = JobPhase.PENDING
    phase_since: float = 0.0
    token: str = ""
    attempt: int = Field(default=0, description="Full job restarts done (pod generation).")
    fault_count: int = Field(default=0, description="Restarts done; faultCount sent to agents.")
    pod_counter: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    placement: dict[str, str] = Field(default_factory=dict, description="Node rank -> node.")
    avoid: list[str] = Field(default_factory=list, description="Repeat offenders to avoid.")
    fault: ActiveFault | None = None
    start_failures: int = Field(
        default=0, description="Faults in a row of pods lost before ready (reset by Running)."
    )
    pending_ranks: list[int] = Field(
        default_factory=list, description="Ranks whose replacement pod could not be placed yet."
    )
    progress: dict[str, list[int]] = Field(
        default_factory=dict, description="Node rank -> checkpoint steps last seen held."
    )
    first_running_at: float | None = None
    resumed_at: float | None = Field(
        default=None, description="When a suspended job was last let run again (epoch s)."
    )
    awaiting_first_step: Remediated | None = None
    cleaned_up: bool = False
    announced: bool = Field(default=False, description="Counted in jobs_created already.")
    resumes_recorded: list[str] = Field(default_factory=list, description="Pod@faultCount keys.")
    segments: list[Segment] = Field(
        default_factory=list, description="Each start of the workers, for goodput accounting."
    )
    size: int | None = Field(
        default=None,
        description="Elastic jobs: node ranks in use now (None: the spec's replicas).",
    )
    resized_at: float | None = Field(
        default=None,
        description="When the job last restarted or resized, or trained again after that "
        "(the scale-up snooze counts from here).",
    )
    checkpoint_failures_seen: dict[str, int] = Field(
        default_factory=dict, description="Pod@agent-pid -> checkpoint failures counted."
    )

    def move(self, target: JobPhase, *, now: float) -> None:
        """Change phase if the table allows it."""
        if target == self.phase:
            return
        if target not in PHASE_TRANSITIONS[self.phase]:
            raise InvalidTransition("job", self.phase.value, target.value)
        self.phase, self.phase_since = target, now
