"""The agent's shared state: lifecycle, fault, rendezvous and the requests waiting for the loop.

Two threads touch it: the HTTP server (``/start`` flips to RUNNING at once, as HyperPod's agent
does so the operator never races it; ``/stop`` flips to STOPPING) and the monitor loop, which
carries out what the requests asked for (launch, stop) and reports what the workers did
(exit, hang). Every move goes through `trainguard.agent.protocol.check_transition`, under one
lock, and every change is announced to listeners (the callback pusher) with a fresh snapshot.
Pure apart from the lock: time comes from an injected `Clock`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trainguard import __version__
from trainguard import constants as c
from trainguard.agent.protocol import (
    MAX_SAVE_STALLS,
    NO_RANK,
    RESTART_MODE_PLR,
    AgentState,
    AgentStatus,
    CheckpointFailure,
    Resume,
    StartRequest,
    StopRequest,
    TrainguardStart,
    TrainguardStatus,
    Training,
    UpdateRequest,
    WorkerFacts,
    WorkerFailure,
    check_transition,
)
from trainguard.clock import Clock, iso_utc
from trainguard.errors import ConflictError, InvalidTransition

Listener = Callable[[AgentStatus], None]


@dataclass(frozen=True)
class PendingStart:
    """A ``/start`` the loop has not carried out yet."""

    request: StartRequest


@dataclass(frozen=True)
class PendingStop:
    """A ``/stop`` (or ``/shutdown``) the loop has not carried out yet."""

    request: StopRequest
    then: AgentState = AgentState.READY


@dataclass
class _Facts:
    """What the status reports besides the lifecycle."""

    reason: str | None = None
    message: str | None = None
    failures: list[WorkerFailure] = field(default_factory=list)
    detected_at: float | None = None
    resume: Resume | None = None
    rules: dict[str, str] = field(default_factory=dict)
    rule_lines_dropped: int = 0
    rule_lines_evaluated: int = 0
    worker_pids: list[int] = field(default_factory=list)
    workers: list[WorkerFacts] = field(default_factory=list)
    progress: dict[str, Any] | None = None
    checkpoint_failures: int = 0
    last_checkpoint_failure: CheckpointFailure | None = None
    checkpoint_saves: int = 0
    save_stalls: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_SAVE_STALLS))
    training: Training | None = None


class AgentCore:
    """Lifecycle and facts of one agent, safe to use from several threads.

    Args:
        clock: time source (transition times, detection times).
        pod: this pod's name (reported in status and pushes).
        pid: the agent's process id (fault injection kills it by this).
        initial: the first state (PLR agents start READY, as HyperPod's do).
    """

    def __init__(
        self, *, clock: Clock, pod: str, pid: int, initial: AgentState = AgentState.READY
    ) -> None:
        self._clock = clock
        self.pod, self.pid = pod, pid
        self._lock = threading.RLock()
        self._state = AgentState.INIT
        self._transitions = {AgentState.INIT.name: iso_utc(clock.wall())}
        self._facts = _Facts()
        if initial is not AgentState.INIT:
            self._set(initial, reason=None, message=None)
        self._pending: PendingStart | PendingStop | None = None
        self._listeners: list[Listener] = []
        self.rendezvous: UpdateRequest | None = None
        self.extension: TrainguardStart | None = None
        self.start_progress: dict[str, Any] = {}
        self.assigned_rank = NO_RANK
        """Rank of the last ``/start`` (HyperPod: ``/update`` never changes it)."""
        self.ip_version: str | None = None
        """Version of the last IP table received (kept until a new table arrives)."""
        self.spare = True
        """The last ``spare`` sent; an agent nobody has told anything yet is a spare."""
        self.wakeup: Callable[[], None] = _no_wakeup
        """Called after every request is recorded: the monitor loop sleeps until one comes."""

    # --- reading ------------------------------------------------------------------------------

    @property
    def state(self) -> AgentState:
        """The current lifecycle state."""
        with self._lock:
            return self._state

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(status)`` after every state change."""
        self._listeners.append(listener)

    def snapshot(self) -> AgentStatus:
        """The ``GET /status`` answer."""
        with self._lock:
            facts, rdzv = self._facts, self.rendezvous
            extra = TrainguardStatus(
                pod=self.pod,
                pid=self.pid,
                fault_count=rdzv.fault_count if rdzv else None,
                failures=list(facts.failures),
                detected_at=facts.detected_at,
                resume=facts.resume,
                rules=dict(facts.rules),
                rule_lines_dropped=facts.rule_lines_dropped,
                rule_lines_evaluated=facts.rule_lines_evaluated,
                worker_pids=list(facts.worker_pids),
                workers=list(facts.workers),
                checkpoint_failures=facts.checkpoint_failures,
                last_checkpoint_failure=facts.last_checkpoint_failure,
                checkpoint_saves=facts.checkpoint_saves,
                save_stalls=list(facts.save_stalls),
                training=facts.training,
            )
            return AgentStatus(
                status=self._state,
                transitions=dict(self._transitions),
                reason=facts.reason,
                message=facts.message,
                restart_mode=RESTART_MODE_PLR,
                ipversion=self.ip_version,
                progress=facts.progress,
                agent_version=__version__,
                assigned_rank=str(self.assigned_rank) if self.assigned_rank >= 0 else None,
                spare=str(self.spare),
                trainguard=extra,
            )

    # --- requests (HTTP thread) ---------------------------------------------------------------

    def request_start(self, request: StartRequest) -> None:
        """``/start``: RUNNING now, workers launch on the loop's next step.

        While RUNNING already (HyperPod answers 200 then too), only the rendezvous, rank,
        progress and rules are noted; the running workers are left alone. A start with rank
        -1 waits, RUNNING, until an ``/update`` brings a rank.

        Raises:
            ConflictError: the state table forbids starting now.
        """
        with self._lock:
            if self._state is AgentState.RUNNING:
                self._note_start(request)
                if isinstance(self._pending, PendingStart):
                    self._pending = PendingStart(request)
                    self.wakeup()
                return
            self._move_or_conflict(AgentState.RUNNING, reason=c.REASON_RUNNING, message=None)
            self._note_start(request)
            self._facts.failures, self._facts.detected_at = [], None
            self._facts.resume, self._facts.rules = None, {}
            self._facts.rule_lines_dropped, self._facts.training = 0, None
            self._facts.rule_lines_evaluated = 0
            self._pending = PendingStart(request)
        self._announce()
        self.wakeup()

    def request_stop(self, request: StopRequest) -> None:
        """``/stop``: STOPPING now, the loop stops the workers and goes READY.

        While READY or STOPPING already nothing happens (HyperPod answers 200 then too).

        Raises:
            ConflictError: the state table forbids stopping now.
        """
        with self._lock:
            if self._state in (AgentState.READY, AgentState.STOPPING):
                return
            self._move_or_conflict(AgentState.STOPPING, reason=None)
            self._pending = PendingStop(request)
        self._announce()
        self.wakeup()

    def request_shutdown(self, request: StopRequest) -> None:
        """``/shutdown``: SHUTDOWN now; the loop stops the workers and the agent exits.

        A repeated ``/shutdown`` changes nothing.
        """
        with self._lock:
            if self._state is AgentState.SHUTDOWN:
                return
            self._move_or_conflict(AgentState.SHUTDOWN, reason=None)
            self._pending = PendingStop(request, then=AgentState.SHUTDOWN)
        self._announce()
        self.wakeup()

    def update(self, request: UpdateRequest) -> None:
        """``/update`` (and the rendezvous part of ``/start``): remember for the next start.

        A start waiting for a rank (rank -1) takes this rendezvous and launches once it has one.
        """
        with self._lock:
            self.rendezvous = request
            self.spare = request.spare
            if request.ip_version is not None and request.rank_ips is not None:
                self.ip_version = request.ip_version
            if request.trainguard is not None:
                self.extension = request.trainguard
            pending = self._pending
            if isinstance(pending, PendingStart) and pending.request is not request:
                fields = {name: getattr(request, name) for name in UpdateRequest.model_fields}
                self._pending = PendingStart(pending.request.model_copy(update=fields))
                self.wakeup()

    def take_pending(self) -> PendingStart | PendingStop | None:
        """The request the loop must carry out now (each is handed out once); a start without
        a rank stays pending until an ``/update`` brings one."""
        with self._lock:
            pending = self._pending
            if isinstance(pending, PendingStart) and pending.request.rank == NO_RANK:
                return None
            self._pending = None
            return pending

    # --- reports (monitor loop) ---------------------------------------------------------------

    def move(self, target: AgentState, *, reason: str | None, message: str | None = None) -> bool:
        """Move to ``target`` if the table allows it; False (and nothing changes) otherwise."""
        with self._lock:
            try:
                self._set(target, reason=reason, message=message)
            except InvalidTransition:
                return False
        self._announce()
        return True

    def fault(self, *, reason: str, message: str, failures: list[WorkerFailure]) -> bool:
        """RUNNING -> FAULTED with the root cause; later failures are appended.

        Returns:
            True when this call moved the agent to FAULTED.
        """
        with self._lock:
            if self._state is AgentState.FAULTED:
                self._facts.failures.extend(failures)
                return False
            try:
                self._set(AgentState.FAULTED, reason=reason, message=message)
            except InvalidTransition:
                return False
            self._facts.failures = list(failures)
            self._facts.detected_at = self._clock.wall()
        self._announce()
        return True

    def add_checkpoint_failure(self, failure: CheckpointFailure) -> None:
        """Count a failed save (kept across restarts: the controller counts per agent pid)."""
        with self._lock:
            self._facts.checkpoint_failures += 1
            self._facts.last_checkpoint_failure = failure

    def add_save_stall(self, seconds: float) -> None:
        """A save's blocking part ended after ``seconds`` (kept across restarts, like failures)."""
        with self._lock:
            self._facts.checkpoint_saves += 1
            self._facts.save_stalls.append(round(seconds, 4))

    def set_facts(self, **facts: Any) -> None:
        """Replace reported facts (worker_pids, workers, rules, progress, ...); no announcement."""
        with self._lock:
            for name, value in facts.items():
                if not hasattr(self._facts, name):
                    raise AttributeError(f"unknown agent fact {name!r}")
                setattr(self._facts, name, value)

    # --- internals ----------------------------------------------------------------------------

    def _note_start(self, request: StartRequest) -> None:
        self.update(request)
        self.assigned_rank = request.rank
        self.start_progress = dict(request.progress)

    def _move_or_conflict(
        self, target: AgentState, *, reason: str | None, message: str | None = None
    ) -> None:
        try:
            self._set(target, reason=reason, message=message)
        except InvalidTransition as exc:
            raise ConflictError(str(exc)) from exc

    def _set(self, target: AgentState, *, reason: str | None, message: str | None) -> None:
        self._state = check_transition(self._state, target)
        self._transitions[target.name] = iso_utc(self._clock.wall())
        self._facts.reason, self._facts.message = reason, message

    def _announce(self) -> None:
        status = self.snapshot()
        for listener in list(self._listeners):
            listener(status)


def _no_wakeup() -> None:
    """No loop listens (tests that drive `AgentCore` alone)."""
