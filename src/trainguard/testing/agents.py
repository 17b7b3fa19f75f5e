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

from trainguard.agent.protocol import (
    PROGRESS_PREFIX,
    AgentState,
    AgentStatus,
    Resume,
    StartRequest,
    StopRequest,
    TrainguardStatus,
    UpdateRequest,
    WorkerFailure,
    check_transition,
)
from trainguard.backends.base import Backend, PodLaunch
from trainguard.errors import AgentError, ConflictError, InvalidTransition
from trainguard.store.records import NodeRecord, PodRecord
from trainguard.store.sqlite import SqliteStore


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
    starts: list[StartRequest] = field(default_factory=list)
    stops: int = 0

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
            worker_pids=[self.pid * 10 + i for i in range(self.nproc)],
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

    def stop(self, request: StopRequest | None = None) -> None:
        """Like ``POST /stop``; the workers stop at once unless ``stops_instantly`` is off."""
        del request
        self._check()
        self._move(AgentState.STOPPING)
        self.stops += 1
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

    def __init__(self, store: SqliteStore, *, nproc: int = 2) -> None:
        self.store, self.nproc = store, nproc
        self.agents: dict[str, FakeAgent] = {}
        self.alive: dict[str, bool] = {}
        self.deleted: list[str] = []
        self.signals: list[tuple[str, int, signal.Signals]] = []
        self.released: list[str] = []
        self._ports = itertools.count(20000)
        self._pids = itertools.count(1000)

    def client_factory(self, pod: PodRecord, token: str) -> FakeAgent:
        """Plug into `AgentHub(client_factory=...)`."""
        del token
        return self.agents[pod.name]

    def create_pod(self, launch: PodLaunch, *, now: float) -> PodRecord:
        """Create a pod whose agent is ready at once."""
        pid = next(self._pids)
        self.agents[launch.pod] = FakeAgent(launch.pod, nproc=self.nproc, pid=pid)
        self.alive[launch.pod] = True
        return launch.running_record(pid=pid, port=next(self._ports), now=now)

    def delete_pod(self, pod: PodRecord, *, grace: float) -> None:
        """Forget the pod."""
        self.alive[pod.name] = False
        self.deleted.append(pod.name)

    def pod_alive(self, pod: PodRecord) -> bool:
        """Alive until deleted or `kill`-ed."""
        return self.alive.get(pod.name, False)

    def list_nodes(self) -> list[NodeRecord]:
        """The store's nodes."""
        return self.store.list_nodes()

    def signal(self, pod: PodRecord, pid: int, sig: signal.Signals) -> None:
        """Record the signal."""
        self.signals.append((pod.name, pid, sig))

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
