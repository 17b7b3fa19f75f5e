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
NO_RANK = -1
"""HyperPod's ``rank`` for "no rank yet" (a pod the operator has not placed); never reported
as ``assigned_rank``."""
DEFAULT_STOP_RESTART_MODE = "ipr"
EMPTY_MASTER_ADDR = "Empty master_addr received from operator"
"""HyperPod's validation message for an empty ``master_addr`` (clients match on it)."""
CHECKPOINT_ERROR_LIMIT = 1024
"""Characters of a failed save's error kept in status and events (one DCP failure can print
every rank's traceback)."""
RESUME_REASON_LIMIT = 1024
"""Characters of a resume's reason kept (it goes into the job status)."""
MAX_SAVE_STALLS = 64
"""Stalls of the newest saves kept in ``/status`` (``save_stalls``): the controller polls about
every second, so more saves than this between two polls are rare; they count in
``checkpoint_saves`` but their stalls are not observed."""


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
    # HyperPod has STOPPING -> READY only: its /shutdown during a stop answers 200 and is
    # dropped, so the agent never exits until it is killed. We let it end the agent.
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

    rank: int = Field(ge=NO_RANK, description="Node (group) rank; -1: no rank yet.")
    nnodes: int = Field(ge=1)
    fault_count: int = Field(alias="faultCount", ge=0)
    master_addr: str
    master_port: int
    log_monitoring_configuration: list[dict[str, Any]] | None = None
    ip_version: str | None = Field(default=None, alias="ipVersion")
    rank_ips: list[RankIp] | None = Field(default=None, alias="rankIps")
    worker_data: Any = None
    spare: bool = False
    trainguard: TrainguardStart | None = None

    @field_validator("master_addr")
    @classmethod
    def _master_addr_given(cls, value: str) -> str:
        if not value:
            raise ValueError(EMPTY_MASTER_ADDR)
        return value

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

    restart_mode: str = Field(
        default=DEFAULT_STOP_RESTART_MODE, description="null means the default, as in HyperPod."
    )
    is_graceful: bool | None = Field(
        default=None, description="SIGUSR1 instead of the shutdown signal; null: not graceful."
    )
    timeout: int | None = Field(default=None, ge=0, description="Seconds before SIGKILL.")

    @field_validator("restart_mode", mode="before")
    @classmethod
    def _default_mode(cls, value: Any) -> Any:
        return DEFAULT_STOP_RESTART_MODE if value is None else value


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
    seconds: float | None = Field(default=None, description="How long the restore took.")
    world_size: int | None = Field(default=None, description="Ranks that restored it.")
    saved_world_size: int | None = Field(default=None, description="Ranks that saved it.")
    reason: str | None = Field(
        default=None,
        max_length=RESUME_REASON_LIMIT,
        description="Why a tier or a newer step was passed over (a resize...).",
    )

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Resume:
        """From a ``resume_report`` socket message (the reason cut to its limit)."""
        step, seconds, reason = message.get("step"), message.get("seconds"), message.get("reason")
        return cls(
            step=int(step) if step is not None else None,
            tier=message.get("tier"),
            seconds=float(seconds) if isinstance(seconds, int | float) else None,
            world_size=_count(message.get("world_size")),
            saved_world_size=_count(message.get("saved_world_size")),
            reason=str(reason)[:RESUME_REASON_LIMIT] if reason else None,
        )


def _count(value: Any) -> int | None:
    """A world size from a worker message (a positive int), else None."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return int(value) if ok else None


class CheckpointFailure(BaseModel):
    """A checkpoint save that failed on a worker of this agent (trainguard addition)."""

    step: int
    rank: int = Field(description="Global rank of the worker whose save failed.")
    tier: str = "durable"
    message: str = Field(max_length=CHECKPOINT_ERROR_LIMIT)
    time: float = Field(description="Epoch seconds when the agent heard of it.")

    @classmethod
    def from_message(cls, message: dict[str, Any], *, time: float) -> CheckpointFailure:
        """From a ``ckpt_save_failed`` socket message (the error cut to its limit)."""
        return cls(
            step=int(message["step"]),
            rank=int(message["rank"]),
            tier=str(message.get("tier") or "durable"),
            message=str(message.get("error") or "unknown error")[:CHECKPOINT_ERROR_LIMIT],
            time=time,
        )


class RankStep(BaseModel):
    """The newest training step one worker reported."""

    step: int = Field(ge=0)
    loss: float | None = None
    time: float = Field(description="Epoch seconds when the agent heard of it.")


class Training(BaseModel):
    """How far the workers of this agent are since their last start (``train_step`` reports)."""

    step: int = Field(ge=0, description="The lowest newest step over this agent's ranks.")
    total: int | None = Field(default=None, description="Steps in total, when the script said.")
    loss: float | None = Field(default=None, description="Loss of the lowest rank here.")
    first_step: int = Field(ge=0, description="The first step reported after the last start.")
    first_step_at: float = Field(description="Epoch seconds of that first report.")
    ranks: dict[str, RankStep] = Field(default_factory=dict, description="Global rank -> step.")


class WorkerFacts(BaseModel):
    """What the agent sees of one worker process (trainguard addition), for finding which rank
    of a stalled job is the culprit (`trainguard.policy.culprit`). Times are the agent's epoch
    seconds; compare them with ``sampled_at``, never with another machine's clock."""

    local_rank: int
    global_rank: int
    pid: int
    state: str | None = Field(
        default=None, description="State letter from /proc/<pid>/stat (R, S, D, T, Z); None: gone."
    )
    state_since: float = Field(description="When the worker entered ``state``.")
    cpu_seconds: float = Field(default=0.0, description="User + system CPU time so far.")
    cpu_since: float = Field(description="When ``cpu_seconds`` last advanced.")
    last_log_at: float | None = Field(default=None, description="When it last wrote a line.")
    step: int | None = Field(default=None, description="The last step it reported (checkpoint).")
    sampled_at: float = Field(description="When the agent read these facts.")


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
    rule_lines_dropped: int = Field(
        default=0,
        description="Log lines the rules never saw: dropped because evaluation fell behind.",
    )
    rule_lines_evaluated: int = Field(
        default=0, description="Log line parts the rules evaluated since the last start."
    )
    worker_pids: list[int] = Field(default_factory=list)
    workers: list[WorkerFacts] = Field(
        default_factory=list, description="Per local rank: process state, CPU time, last log line."
    )
    checkpoint_failures: int = Field(default=0, description="Failed saves since the agent began.")
    last_checkpoint_failure: CheckpointFailure | None = None
    checkpoint_saves: int = Field(
        default=0, description="Saves whose blocking part ended, since the agent began."
    )
    save_stalls: list[float] = Field(
        default_factory=list,
        max_length=MAX_SAVE_STALLS,
        description="Seconds the loop waited in each of the newest saves, oldest first.",
    )
    training: Training | None = None


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

    def wire_json(self) -> bytes:
        """`to_wire` as JSON text, by pydantic's own serializer (no dict in between)."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


class CallbackPayload(BaseModel):
    """What an agent POSTs to the controller's callback URL on every state change."""

    pod: str
    status: AgentStatus
