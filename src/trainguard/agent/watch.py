"""Per-worker process facts for ``/status``: what each local rank's process is doing now.

A hung collective job goes quiet on every rank at once, so the rank that caused it cannot be
told from the logs; it can be told from the processes: the culprit is stopped, dead, in
uninterruptible sleep, or its CPU time and step stand still while the others wait. The monitor
loop calls `WorkerWatch.sample` (it throttles itself to `SAMPLE_INTERVAL`), log reading calls
`saw_lines`, checkpoint reports call `saw_step`; `facts` is what ``/status`` reports under
``trainguard.workers`` and the controller compares across pods
(`trainguard.policy.culprit`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from trainguard.agent.protocol import WorkerFacts
from trainguard.clock import Clock
from trainguard.proctree import process_state

SAMPLE_INTERVAL = 0.5
"""Seconds between two reads of the workers' /proc stat files (a hang is judged over ~15 s)."""


@dataclass
class _Worker:
    local_rank: int
    global_rank: int
    pid: int
    state: str | None = None
    state_since: float = 0.0
    cpu_seconds: float = 0.0
    cpu_since: float = 0.0
    last_log_at: float | None = None
    step: int | None = None


class WorkerWatch:
    """Facts of one worker group, updated from the loop and the socket thread.

    Args:
        pids: worker pids by local rank.
        global_ranks: global rank of each local rank.
        clock: time source (its wall clock stamps the facts).
    """

    def __init__(self, pids: Sequence[int], global_ranks: Sequence[int], *, clock: Clock) -> None:
        now = clock.wall()
        self._clock = clock
        self._lock = threading.Lock()
        self._workers = [
            _Worker(local, rank, pid, state_since=now, cpu_since=now)
            for local, (pid, rank) in enumerate(zip(pids, global_ranks, strict=True))
        ]
        self._sampled_at: float | None = None

    def sample(self, *, force: bool = False) -> bool:
        """Read every worker's state and CPU time; False when the last read is too recent."""
        now = self._clock.wall()
        if not force and self._sampled_at is not None and now - self._sampled_at < SAMPLE_INTERVAL:
            return False
        readings = [process_state(w.pid) for w in self._workers]
        with self._lock:
            for worker, reading in zip(self._workers, readings, strict=True):
                _update(worker, reading, now)
            self._sampled_at = now
        return True

    def saw_lines(self, local_ranks: Iterable[int]) -> None:
        """These local ranks wrote log lines just now."""
        now = self._clock.wall()
        with self._lock:
            for rank in set(local_ranks):
                if 0 <= rank < len(self._workers):
                    self._workers[rank].last_log_at = now

    def saw_step(self, local_rank: int, step: int) -> None:
        """Local rank ``local_rank`` reported reaching ``step`` (a save, a resume)."""
        with self._lock:
            if 0 <= local_rank < len(self._workers):
                worker = self._workers[local_rank]
                worker.step = step if worker.step is None else max(worker.step, step)

    def facts(self) -> list[WorkerFacts]:
        """The ``/status`` entries, by local rank (empty before the first sample)."""
        with self._lock:
            at = self._sampled_at
            if at is None:
                return []
            return [
                WorkerFacts(
                    local_rank=w.local_rank,
                    global_rank=w.global_rank,
                    pid=w.pid,
                    state=w.state,
                    state_since=w.state_since,
                    cpu_seconds=w.cpu_seconds,
                    cpu_since=w.cpu_since,
                    last_log_at=w.last_log_at,
                    step=w.step,
                    sampled_at=at,
                )
                for w in self._workers
            ]


def _update(worker: _Worker, reading: tuple[str, float] | None, now: float) -> None:
    state, cpu = reading if reading is not None else (None, worker.cpu_seconds)
    if state != worker.state:
        worker.state, worker.state_since = state, now
    if cpu > worker.cpu_seconds:
        worker.cpu_seconds, worker.cpu_since = cpu, now
