"""In-memory fakes of an agent and of a backend, so controller tests step without processes.

`FakeAgent` follows the agent's state table (`trainguard.agent.protocol.TRANSITIONS`) and
answers like the real one; tests drive its workers with `crash`, `finish`, `hold_steps` and
`resume`. `FakeBackend` keeps pods in memory; its `client_factory` plugs the fakes into the
controller's `AgentHub`.
"""

from __future__ import annotations

import itertools
import signal
from dataclasses import dataclass, field
from typing import Any

from trainguard import constants as c
from trainguard.agent.protocol import (
    MAX_SAVE_STALLS,
    PROGRESS_PREFIX,
    AgentState,
    AgentStatus,
    CheckpointFailure,
    Resume,
    StartRequest,
    StopRequest,
    TrainguardStatus,
    Training,
    UpdateRequest,
    WorkerFacts,
    WorkerFailure,
    check_transition,
)
from trainguard.backends.base import Backend, PodLaunch
from trainguard.backends.local.nodesink import StoreNodeSink
from trainguard.errors import AgentError, ConflictError, InvalidTransition
from trainguard.store.base import Store
from trainguard.store.records import NodeRecord, PodRecord


@dataclass
class FakeAgent:
    """An agent whose workers are controlled by the test."""

    pod: str
    nproc: int = 2
    pid: int = 0
    state: AgentState = AgentState.READY
    reachable: bool = True
    stops_instantly: bool = True
    fault_count: int | None = None
    reason: str | None = None
    message: str | None = None
    failures: list[WorkerFailure] = field(default_factory=list)
    detected_at: float | None = None
    steps: list[int] = field(default_factory=list)
    resume_at: Resume | None = None
    rules: dict[str, str] = field(default_factory=dict)
    """Log-rule name -> state, as ``/status`` reports them."""
    checkpoint_failures: list[CheckpointFailure] = field(default_factory=list)
    save_stalls: list[float] = field(default_factory=list)
    """Seconds each save blocked the loop, oldest first, since the agent began."""
    rule_lines_evaluated: int = 0
    rule_lines_dropped: int = 0
    workers: list[WorkerFacts] = field(default_factory=list)
    training: Training | None = None
    """What ``train_step`` reports would show (``/status.trainguard.training``)."""
    starts: list[StartRequest] = field(default_factory=list)
    stops: int = 0
    stop_requests: list[StopRequest | None] = field(default_factory=list)

    def _check(self) -> None:
        if not self.reachable:
            raise AgentError(f"fake agent of {self.pod} is unreachable")

    def _move(self, target: AgentState) -> None:
        try:
            self.state = check_transition(self.state, target)
        except InvalidTransition as exc:
            raise ConflictError(str(exc)) from exc

    def status(self) -> AgentStatus:
        """Like ``GET /status``."""
        self._check()
        progress: dict[str, Any] | None = None
        if self.steps:
            progress = {
                PROGRESS_PREFIX: {"progressCount": max(self.steps), "steps": list(self.steps)}
            }
        extra = TrainguardStatus(
            pod=self.pod,
            pid=self.pid,
            fault_count=self.fault_count,
            failures=list(self.failures),
            detected_at=self.detected_at,
            resume=self.resume_at,
            rules=dict(self.rules),
            rule_lines_evaluated=self.rule_lines_evaluated,
            rule_lines_dropped=self.rule_lines_dropped,
            worker_pids=[self.pid * 10 + i for i in range(self.nproc)],
            workers=list(self.workers),
            training=self.training,
            checkpoint_failures=len(self.checkpoint_failures),
            checkpoint_saves=len(self.save_stalls),
            save_stalls=self.save_stalls[-MAX_SAVE_STALLS:],
            last_checkpoint_failure=self.checkpoint_failures[-1]
            if self.checkpoint_failures
            else None,
        )
        return AgentStatus(
            status=self.state,
            reason=self.reason,
            message=self.message,
            progress=progress,
            trainguard=extra,
        )

    def start(self, request: StartRequest) -> None:
        """Like ``POST /start``."""
        self._check()
        self._move(AgentState.RUNNING)
        self.starts.append(request)
        self.fault_count = request.fault_count
        self.reason, self.message, self.failures, self.detected_at = "Running", None, [], None
        self.rule_lines_evaluated = self.rule_lines_dropped = 0
        self.resume_at = None  # as the real agent: a new start has not resumed yet

    def stop(self, request: StopRequest | None = None) -> None:
        """Like ``POST /stop``; the workers stop at once unless ``stops_instantly`` is off."""
        self._check()
        self._move(AgentState.STOPPING)
        self.stops += 1
        self.stop_requests.append(request)
        if self.stops_instantly:
            self._move(AgentState.READY)

    def update(self, request: UpdateRequest) -> None:
        """Like ``POST /update``."""
        del request
        self._check()

    def shutdown(self) -> None:
        """Like ``POST /shutdown``."""
        self._check()
        self._move(AgentState.SHUTDOWN)

    def logs(self, *, rank: int, tail: int = 100) -> list[str]:
        """Like ``GET /logs``."""
        self._check()
        return [f"rank {rank} line {i}" for i in range(min(tail, 3))]

    def close(self) -> None:
        """Nothing to release."""

    # --- test controls -----------------------------------------------------------------------

    def crash(
        self,
        *,
        local_rank: int = 0,
        exitcode: int = 1,
        now: float = 0.0,
        reason: str = "WorkerCrash",
    ) -> None:
        """A worker exits badly (or a log rule fires, with ``reason=LogHang_<rule>``)."""
        self._move(AgentState.FAULTED)
        global_rank = (self.starts[-1].rank if self.starts else 0) * self.nproc + local_rank
        self.reason, self.detected_at = reason, now
        self.message = f"Local Rank {local_rank} exited with code {exitcode}"
        self.failures = [
            WorkerFailure(
                local_rank=local_rank, global_rank=global_rank, exitcode=exitcode, time=now
            )
        ]

    def hang(self, *, now: float, rule: str = "JobHangingDetection") -> None:
        """A log rule saw no progress: FAULTED with ``LogHang_<rule>`` and no exited worker."""
        self._move(AgentState.FAULTED)
        self.reason, self.detected_at, self.failures = f"LogHang_{rule}", now, []
        self.message = f"rank {self.node_rank * self.nproc}: no line matched for 15 s"

    def report_workers(self, *states: str, now: float, stuck_for: float = 20.0) -> None:
        """Worker facts: local rank ``i`` in ``/proc`` state ``states[i]`` for ``stuck_for``."""
        self.workers = [
            WorkerFacts(
                local_rank=i,
                global_rank=self.node_rank * self.nproc + i,
                pid=self.pid * 10 + i,
                state=state,
                state_since=now - stuck_for,
                cpu_since=now - stuck_for,
                sampled_at=now,
            )
            for i, state in enumerate(states)
        ]

    @property
    def node_rank(self) -> int:
        """The node rank of the last ``/start`` (0 before one)."""
        return self.starts[-1].rank if self.starts else 0

    def finish(self) -> None:
        """Every worker exits 0."""
        self._move(AgentState.COMPLETED)

    def finish_stopping(self) -> None:
        """Workers that were slow to stop are gone now."""
        self._move(AgentState.READY)


class FakeBackend(Backend):
    """Pods in memory, one `FakeAgent` each; nodes come from the store.

    Args:
        store: where nodes are read from.
        nproc: workers per fake agent.
    """

    name = "fake"

    def __init__(self, store: Store, *, nproc: int = 2) -> None:
        self.store, self.nproc = store, nproc
        self.agents: dict[str, FakeAgent] = {}
        self.alive: dict[str, bool] = {}
        self.deleted: list[str] = []
        self.signals: list[tuple[str, int, signal.Signals]] = []
        self.released: list[str] = []
        self.launches: list[PodLaunch] = []
        """Every `create_pod` request, oldest first."""
        self.start_failure: str | None = None
        """When set, every pod created dies at once, before its agent answers, with this
        failure (a container command that is not found, say)."""
        self.stuck_start: str | None = None
        """When set, every pod created stays up but its agent never gets ready, with this
        failure (the kubelet's ``CreateContainerConfigError`` for a missing Secret, say)."""
        self.failures: dict[str, str] = {}
        self._ports = itertools.count(20000)
        self._pids = itertools.count(1000)

    def client_factory(self, pod: PodRecord, token: str) -> FakeAgent:
        """Plug into `AgentHub(client_factory=...)`."""
        del token
        return self.agents[pod.name]

    def create_pod(self, launch: PodLaunch, *, now: float) -> PodRecord:
        """Create a pod whose agent is ready at once (dead at once with `start_failure`,
        never ready with `stuck_start`)."""
        self.launches.append(launch)
        pid = next(self._pids)
        self.agents[launch.pod] = FakeAgent(launch.pod, nproc=self.nproc, pid=pid)
        self.alive[launch.pod] = True
        if self.start_failure is not None:
            self.kill(launch.pod)
            self.failures[launch.pod] = self.start_failure
        elif self.stuck_start is not None:
            self.agents[launch.pod].state = AgentState.INIT
            self.failures[launch.pod] = self.stuck_start
        return launch.running_record(pid=pid, port=next(self._ports), now=now)

    def delete_pod(self, pod: PodRecord, *, grace: float) -> None:
        """Forget the pod."""
        self.alive[pod.name] = False
        self.deleted.append(pod.name)

    def pod_alive(self, pod: PodRecord) -> bool:
        """Alive until deleted or `kill`-ed."""
        return self.alive.get(pod.name, False)

    def pod_failure(self, pod: PodRecord) -> str | None:
        """The `start_failure` the pod died of, or the `stuck_start` it hangs in."""
        return self.failures.get(pod.name)

    def list_nodes(self) -> list[NodeRecord]:
        """The store's nodes."""
        return self.store.list_nodes()

    def signal(self, pod: PodRecord, pid: int, sig: signal.Signals) -> None:
        """Record the signal."""
        self.signals.append((pod.name, pid, sig))

    def mark_node_health(self, node: str, health: str, *, why: str) -> None:
        """In the store, as the local backend does."""
        StoreNodeSink(self.store, component=c.CONTROLLER_COMPONENT).mark_health(
            node, health, why=why
        )

    def release_job(self, namespace: str, job: str, job_uid: str) -> None:
        """Record the release."""
        self.released.append(f"{namespace}/{job}")

    def free_port(self, host: str) -> int:
        """A fresh fake port."""
        return next(self._ports)

    def kill(self, pod: str) -> None:
        """The pod's process dies (its agent stops answering)."""
        self.alive[pod] = False
        self.agents[pod].reachable = False
