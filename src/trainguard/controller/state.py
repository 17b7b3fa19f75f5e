"""The controller's own state of a job, persisted beside the HyperPod-shaped status.

``status`` is what users and HyperPod tooling read; `JobState` is what a controller needs to
carry on after it was killed: the phase of the job's lifecycle, the fault being remediated, the
restart history for the policy's windows, the agents' token, where each rank ran. Phases are an
enum with one transition table; `JobState.move` is the only way to change phase.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from trainguard.errors import InvalidTransition
from trainguard.policy.restart import RestartHistory


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


P = JobPhase
_ENDINGS = frozenset({P.FAILED, P.DELETING})
PHASE_TRANSITIONS: dict[JobPhase, frozenset[JobPhase]] = {
    P.PENDING: frozenset({P.CREATING}) | _ENDINGS,
    P.CREATING: frozenset({P.STARTING, P.RESTARTING, P.FULL_RESTARTING}) | _ENDINGS,
    P.STARTING: frozenset({P.RUNNING, P.RESTARTING, P.FULL_RESTARTING, P.COMPLETED}) | _ENDINGS,
    P.RUNNING: frozenset({P.COMPLETED, P.RESTARTING, P.FULL_RESTARTING}) | _ENDINGS,
    P.RESTARTING: frozenset({P.STARTING, P.FULL_RESTARTING}) | _ENDINGS,
    P.FULL_RESTARTING: frozenset({P.CREATING}) | _ENDINGS,
    P.COMPLETED: frozenset({P.DELETING}),
    P.FAILED: frozenset({P.DELETING}),
    P.DELETING: frozenset(),
}
TERMINAL = frozenset({P.COMPLETED, P.FAILED})


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
    total_restarts: int = 0
    full_restarts: int = 0
    plr_times: list[float] = Field(default_factory=list)
    placement: dict[str, str] = Field(default_factory=dict, description="Node rank -> node.")
    avoid: list[str] = Field(default_factory=list, description="Repeat offenders to avoid.")
    fault: ActiveFault | None = None
    pending_ranks: list[int] = Field(
        default_factory=list, description="Ranks whose replacement pod could not be placed yet."
    )
    progress: dict[str, list[int]] = Field(
        default_factory=dict, description="Node rank -> checkpoint steps last seen held."
    )
    first_running_at: float | None = None
    cleaned_up: bool = False
    announced: bool = Field(default=False, description="Counted in jobs_created already.")
    resumes_recorded: list[str] = Field(default_factory=list, description="Pod@faultCount keys.")

    @property
    def history(self) -> RestartHistory:
        """The restart history in the form the restart policy takes."""
        return RestartHistory(self.total_restarts, self.full_restarts, tuple(self.plr_times))

    def set_history(self, history: RestartHistory) -> None:
        """Store a history the restart policy returned."""
        self.total_restarts, self.full_restarts = history.total, history.full
        self.plr_times = list(history.plr_times)

    def move(self, target: JobPhase, *, now: float) -> None:
        """Change phase if the table allows it."""
        if target == self.phase:
            return
        if target not in PHASE_TRANSITIONS[self.phase]:
            raise InvalidTransition("job", self.phase.value, target.value)
        self.phase, self.phase_since = target, now
