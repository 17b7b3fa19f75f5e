"""How far training is on this agent's workers: the newest step, total and loss per rank.

Workers report each step over the local socket (``train_step {step, rank, total?, loss?}``,
sent by `trainguard.checkpoint` at most every few hundred milliseconds). The agent keeps the
latest report per global rank plus the first step after the latest ``/start``, and reports it
in ``/status.trainguard.training``: ``trainguard run`` shows step/total, ETA and loss from it,
and the controller learns when training resumed after a restart (the first step, not the
agent's RUNNING, is when useful work starts again). The per-rank records are the raw material
of a per-rank timeline.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

from trainguard.agent.protocol import RankStep, Training


class TrainingTracker:
    """Latest step per rank, reset on every start; fed from the socket thread.

    Args:
        wall: the wall clock (epoch seconds) stamping each report.
    """

    def __init__(self, wall: Callable[[], float]) -> None:
        self._wall = wall
        self._lock = threading.Lock()
        self._ranks: dict[int, RankStep] = {}
        self._total: int | None = None
        self._first: tuple[int, float] | None = None

    def reset(self) -> None:
        """Workers are (re)started: forget the previous run's steps."""
        with self._lock:
            self._ranks, self._total, self._first = {}, None, None

    def on_message(self, message: dict[str, Any]) -> dict[str, Any]:
        """Handle ``train_step``; a bad field raises ``ValueError`` (the socket refuses it)."""
        step, rank = int(message["step"]), int(message.get("rank", message.get("local_rank", 0)))
        if step < 0 or rank < 0:
            raise ValueError(f"train_step: step {step} and rank {rank} must be >= 0")
        loss = message.get("loss")
        value = float(loss) if isinstance(loss, (int, float)) else None
        total = message.get("total")
        now = self._wall()
        with self._lock:
            self._ranks[rank] = RankStep(
                step=step, loss=value if value is None or math.isfinite(value) else None, time=now
            )
            if isinstance(total, int) and total > 0:
                self._total = total
            if self._first is None:
                self._first = (step, now)
        return {"ok": True}

    def payload(self) -> Training | None:
        """``/status.trainguard.training`` (None before any step was reported)."""
        with self._lock:
            if not self._ranks or self._first is None:
                return None
            lowest = min(self._ranks)
            return Training(
                step=min(r.step for r in self._ranks.values()),
                total=self._total,
                loss=self._ranks[lowest].loss,
                first_step=self._first[0],
                first_step_at=self._first[1],
                ranks={str(rank): record for rank, record in sorted(self._ranks.items())},
            )
