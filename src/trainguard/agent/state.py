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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trainguard import __version__
from trainguard import constants as c
from trainguard.agent.protocol import (
    RESTART_MODE_PLR,
    AgentState,
    AgentStatus,
    Resume,
    StartRequest,
    StopRequest,
    TrainguardStart,
    TrainguardStatus,
    UpdateRequest,
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
    worker_pids: list[int] = field(default_factory=list)
    progress: dict[str, Any] | None = None


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
        self._state = initial
        self._transitions = {initial.name: iso_utc(clock.wall())}
        self._facts = _Facts()
        self._pending: PendingStart | PendingStop | None = None
        self._listeners: list[Listener] = []
        self.rendezvous: UpdateRequest | None = None
        self.extension: TrainguardStart | None = None
        self.start_progress: dict[str, Any] = {}

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
                worker_pids=list(facts.worker_pids),
            )
            return AgentStatus(
                status=self._state,
                transitions=dict(self._transitions),
                reason=facts.reason,
                message=facts.message,
                restart_mode=RESTART_MODE_PLR,
                ipversion=rdzv.ip_version if rdzv else None,
                progress=facts.progress,
                agent_version=__version__,
                assigned_rank=str(rdzv.rank) if rdzv else None,
                spare=str(bool(rdzv.spare)) if rdzv else "False",
                trainguard=extra,
            )

    # --- requests (HTTP thread) ---------------------------------------------------------------

    def request_start(self, request: StartRequest) -> None:
        """``/start``: RUNNING now, workers launch on the loop's next step.

        Raises:
            ConflictError: the state table forbids starting now.
        """
        with self._lock:
            self._move_or_conflict(AgentState.RUNNING, reason=c.REASON_RUNNING, message=None)
            self.update(request)
            self.start_progress = dict(request.progress)
            self._facts.failures, self._facts.detected_at = [], None
            self._facts.resume, self._facts.rules = None, {}
            self._pending = PendingStart(request)
        self._announce()

    def request_stop(self, request: StopRequest) -> None:
        """``/stop``: STOPPING now, the loop stops the workers and goes READY.

        Raises:
            ConflictError: the state table forbids stopping now.
        """
        with self._lock:
            self._move_or_conflict(AgentState.STOPPING, reason=c.AGENT_REASON_STOPPED)
            self._pending = PendingStop(request)
        self._announce()

    def request_shutdown(self, request: StopRequest) -> None:
        """``/shutdown``: SHUTDOWN now; the loop stops the workers and the agent exits.

        Raises:
            ConflictError: the agent is shut down already.
        """
        with self._lock:
            self._move_or_conflict(AgentState.SHUTDOWN, reason=None)
            self._pending = PendingStop(request, then=AgentState.SHUTDOWN)
        self._announce()

    def update(self, request: UpdateRequest) -> None:
        """``/update`` (and the rendezvous part of ``/start``): remember for the next start."""
        with self._lock:
            self.rendezvous = request
            if request.trainguard is not None:
                self.extension = request.trainguard

    def take_pending(self) -> PendingStart | PendingStop | None:
        """The request the loop must carry out now (each is handed out once)."""
        with self._lock:
            pending, self._pending = self._pending, None
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

    def set_facts(self, **facts: Any) -> None:
        """Replace reported facts (worker_pids, rules, progress, resume); no announcement."""
        with self._lock:
            for name, value in facts.items():
                if not hasattr(self._facts, name):
                    raise AttributeError(f"unknown agent fact {name!r}")
                setattr(self._facts, name, value)

    # --- internals ----------------------------------------------------------------------------

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
