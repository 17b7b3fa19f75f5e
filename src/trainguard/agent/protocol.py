"""The agent's HTTP control API, protocol-compatible with SageMaker HyperPod's elastic agent.

Routes (reference/hyperpod.md §b.2): ``POST /start``, ``POST /stop``, ``POST /update``,
``POST /shutdown``, ``GET /status``; we add ``GET /logs`` and bearer-token authentication. The
request and status models below use HyperPod's field names exactly (snake_case and camelCase
mixed, as HyperPod has them), so our controller can drive HyperPod's agent and HyperPod's
operator can drive ours. Everything trainguard adds travels in one optional ``trainguard``
object, which HyperPod's side ignores.

The agent lifecycle is an enum with one transition table (§b.3); `check_transition` is the only
way to move, so an illegal move is an error at the call site, never a silent state.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trainguard.errors import InvalidTransition

AUTH_HEADER = "Authorization"
AUTH_SCHEME = "Bearer"
DEFAULT_PORT = 8080
RESTART_MODE_PLR = "process_level_restart"
RESTART_MODE_IPR = "in_process_restart"
PROGRESS_PREFIX = "trainguard"


class AgentState(StrEnum):
    """States of a process-level-restart agent; the wire form is lower-case."""

    INIT = "init"
    READY = "ready"
    RUNNING = "running"
    COMPLETED = "completed"
    FAULTED = "faulted"
    STOPPING = "stopping"
    SHUTDOWN = "shutdown"


S = AgentState
TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    S.INIT: frozenset({S.READY, S.SHUTDOWN}),
    S.READY: frozenset({S.RUNNING, S.SHUTDOWN}),
    S.RUNNING: frozenset({S.COMPLETED, S.FAULTED, S.STOPPING, S.SHUTDOWN}),
    S.FAULTED: frozenset({S.STOPPING, S.SHUTDOWN}),
    S.STOPPING: frozenset({S.READY, S.SHUTDOWN}),
    S.COMPLETED: frozenset({S.SHUTDOWN, S.STOPPING}),
    S.SHUTDOWN: frozenset(),
}


def check_transition(current: AgentState, target: AgentState) -> AgentState:
    """Return ``target`` if the table allows ``current -> target``; raise otherwise."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition("agent", current.value, target.value)
    return target


class _Wire(BaseModel):
    """Requests accept unknown keys (newer operators may send more) and ignore them."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class RankIp(_Wire):
    """One entry of the IP table sent with ``/start`` and ``/update``."""

    rank: int = Field(ge=0, le=100_000)
    ip: str


class PeerRef(_Wire):
    """Another agent of the same job, for checkpoint replication and fetch."""

    rank: int = Field(ge=0, description="Node (group) rank of the peer.")
    url: str = Field(description="Base URL of the peer agent, e.g. http://10.0.0.7:8080.")


class TrainguardStart(_Wire):
    """trainguard's additions to ``/start`` and ``/update``; HyperPod's operator never sends it."""

    job: str | None = Field(default=None, description="Job name (log prefixes, shm paths).")
    callback_url: str | None = Field(
        default=None, description="Where the agent POSTs its status on every state change."
    )
    peers: list[PeerRef] = Field(default_factory=list)
    restart_attempt: int = Field(default=0, ge=0, description="Full job restarts so far.")


class UpdateRequest(_Wire):
    """Body of ``POST /update``: new rendezvous, IP table, log rules or spare flag."""

    rank: int = Field(ge=0)
    nnodes: int = Field(ge=1)
    fault_count: int = Field(alias="faultCount", ge=0)
    master_addr: str = Field(min_length=1)
    master_port: int
    log_monitoring_configuration: list[dict[str, Any]] | None = None
    ip_version: str | None = Field(default=None, alias="ipVersion")
    rank_ips: list[RankIp] | None = Field(default=None, alias="rankIps")
    worker_data: Any = None
    spare: bool = False
    trainguard: TrainguardStart | None = None

    @field_validator("master_port", mode="before")
    @classmethod
    def _port_from_str(cls, value: Any) -> Any:
        if value == "":
            return 0
        return int(value) if isinstance(value, str) and value.isdigit() else value

    @field_validator("spare", mode="before")
    @classmethod
    def _spare_from_int(cls, value: Any) -> Any:
        return bool(value) if isinstance(value, int) else value


class StartRequest(UpdateRequest):
    """Body of ``POST /start``: everything of /update plus the agreed checkpoint progress."""

    progress: dict[str, Any] = Field(default_factory=dict)


class StopRequest(_Wire):
    """Body of ``POST /stop`` (optional): how to stop the workers."""

    restart_mode: str = Field(default="ipr")
    is_graceful: bool = Field(default=False, description="SIGUSR1 instead of the shutdown signal.")
    timeout: int | None = Field(default=None, ge=0, description="Seconds before SIGKILL.")


class WorkerFailure(BaseModel):
    """One worker that exited badly (trainguard addition; the earliest is the root cause)."""

    local_rank: int
    global_rank: int
    exitcode: int
    signal: str | None = None
    time: float = Field(description="Epoch seconds when the agent saw the exit.")
    message: str = ""


class Resume(BaseModel):
    """Where the workers of this agent resumed from after their last start."""

    step: int | None = None
    tier: str | None = None


class TrainguardStatus(BaseModel):
    """trainguard's additions to ``/status``."""

    model_config = ConfigDict(extra="allow")

    pod: str | None = None
    pid: int | None = None
    fault_count: int | None = None
    failures: list[WorkerFailure] = Field(default_factory=list)
    detected_at: float | None = Field(
        default=None, description="Epoch seconds when the current fault was detected."
    )
    resume: Resume | None = None
    rules: dict[str, str] = Field(default_factory=dict, description="Rule name -> rule state.")
    worker_pids: list[int] = Field(default_factory=list)


class AgentStatus(BaseModel):
    """``GET /status``; keys are left out when unset, as HyperPod's agent does."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    status: AgentState
    transitions: dict[str, str] = Field(default_factory=dict)
    reason: str | None = None
    message: str | None = None
    restart_mode: str | None = Field(default=None, alias="restartMode")
    worker_data: list[dict[str, Any]] | None = None
    rank_labels: dict[str, Any] | None = None
    ipversion: str | None = None
    progress: dict[str, Any] | None = None
    agent_version: str | None = None
    assigned_rank: str | None = None
    spare: str | None = None
    priority: str | None = None
    trainguard: TrainguardStatus | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON object sent on the wire (aliases, no nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class CallbackPayload(BaseModel):
    """What an agent POSTs to the controller's callback URL on every state change."""

    pod: str
    status: AgentStatus
