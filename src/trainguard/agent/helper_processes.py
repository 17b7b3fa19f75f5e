"""The agent's children that are not workers: parked hot spares and the zygote.

Both are optional (``--hot-spares``, ``--cold-start``) and both are judged the same way by the
monitor loop: a worker group starts from them when it can, their pids are kept when workers are
stopped or orphans reaped, and they are refilled only once nothing is starting, because
importing torch beside starting workers slows those workers down (measured: 2.8 s -> 5.5 s to
the first step on 2 cores).
"""

from __future__ import annotations

from typing import Any

from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs

from trainguard.agent.workers import LaunchSpec, WorkerGroup
from trainguard.agent.zygote_client import ZygoteKeeper, ZygoteUnavailable


class HelperProcesses:
    """Hot spares (a `SparePool`, or None) and the `ZygoteKeeper` (or None), refilled
    ``refill_delay`` seconds after a start unless the workers stop sooner."""

    def __init__(self, spares: Any, zygotes: ZygoteKeeper | None, refill_delay: float) -> None:
        self.spares = spares
        self.zygotes = zygotes
        self.refill_delay = refill_delay
        self._refill_at: float | None = None

    def start_group(self, spec: LaunchSpec, nproc: int, logs: DefaultLogsSpecs) -> WorkerGroup:
        """Parked hot spares if there are, else forked by the zygote, else cold."""
        taken = self.spares.take(nproc) if self.spares is not None else None
        zygote = self.zygotes.current() if self.zygotes is not None else None
        keep = self.pids()
        if taken is None and zygote is not None:
            try:
                return WorkerGroup.launch(spec, logs=logs, zygote=zygote, keep=keep)
            except ZygoteUnavailable as exc:
                assert self.zygotes is not None
                self.zygotes.failed(exc)
        return WorkerGroup.launch(spec, logs=logs, spares=taken, keep=keep)

    def started(self, now: float) -> None:
        """Workers were started at ``now``: refill once they are up (or stopped)."""
        self._refill_at = now + self.refill_delay

    def refill(self, *, starting: bool, now: float) -> None:
        """Park new spares and replace a dead zygote, unless workers are still starting."""
        if self._refill_at is None or (starting and now < self._refill_at):
            return
        self._refill_at = None
        if self.spares is not None:
            self.spares.fill()
        if self.zygotes is not None:
            self.zygotes.ensure()

    def pids(self) -> set[int]:
        spares = set(self.spares.pids()) if self.spares is not None else set()
        return spares | (self.zygotes.pids() if self.zygotes is not None else set())

    def close(self) -> None:
        if self.spares is not None:
            self.spares.close()
        if self.zygotes is not None:
            self.zygotes.close()
