"""Per-rank step and checkpoint times of this pod, for goodput and ``trainguard job report``.

Worker logs carry no timestamps, and the controller only hears of checkpoint steps, so the
agent — the one place that sees every line and every save as it happens — stamps them: the
step number of lines like ``Step: 12`` / ``step=12`` / ``step 12/400``, steps scripts report
over the socket (``train_step``, exact where log lines are not), ``ckpt_save_begin`` /
``_end`` (the loop's checkpoint stall), saves committed, resumes, and each start and stop of
the workers. Records go as JSON lines to the file named by ``$TRAINGUARD_TIMELINE_FILE`` (the
local backend sets ``<pod dir>/timeline.jsonl``; nothing is written when it is unset), and the
newest step every local rank reached goes into ``/status.progress`` so the controller's goodput
knows how far training got (`merge`).

Step records are throttled to one per rank every `STEP_RECORD_INTERVAL` seconds (the newest is
always written when the workers stop), and the file stops growing at `MAX_TIMELINE_BYTES`.
Called from the agent's loop thread (lines, start, stop) and its socket thread (saves,
steps), hence the lock.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from trainguard import constants as c
from trainguard.agent.protocol import PROGRESS_PREFIX
from trainguard.clock import Clock
from trainguard.permissions import open_private

STEP_LINE = re.compile(r"\bstep\s*(?:[:=]\s*(\d{1,12})\b|(\d{1,12})\s*/\s*\d)", re.IGNORECASE)
"""A training step in a log line: ``Step: 12``, ``step=12``, ``step 12/400`` (not ``at step
12``, which scripts print before training)."""
STEP_RECORD_INTERVAL = 1.0
MAX_TIMELINE_BYTES = 64 * 1024 * 1024


def step_of(line: str) -> int | None:
    """The training step a log line reports, if any."""
    match = STEP_LINE.search(line)
    if match is None:
        return None
    return int(match[1] or match[2])


class Timeline:
    """Stamps steps, saves and starts of this pod's workers.

    Args:
        path: the JSONL file (truncated: one file per pod); None records nothing to disk.
        pod: this pod's name, written in every record.
        clock: time source (wall clock: records are compared with the controller's events).
    """

    def __init__(self, path: str | None, *, pod: str, clock: Clock) -> None:
        self.pod, self.clock = pod, clock
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._written = 0
        if path:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            self._file = os.fdopen(open_private(Path(path), flags), "w", buffering=1)
        self._ranks: list[int] = []
        self._restart = 0
        self._latest: dict[int, tuple[int, float]] = {}
        self._recorded: dict[int, float] = {}
        self._save_began: dict[int, tuple[int | None, float]] = {}

    @classmethod
    def from_env(cls, *, pod: str, clock: Clock) -> Timeline:
        """The recorder writing where ``$TRAINGUARD_TIMELINE_FILE`` says."""
        return cls(os.environ.get(c.ENV_TIMELINE_FILE) or None, pod=pod, clock=clock)

    def started(self, *, restart: int, ranks: Sequence[int]) -> None:
        """Workers of restart ``restart`` were launched; ``ranks[local] = global rank``."""
        with self._lock:
            self._ranks, self._restart = list(ranks), restart
            self._latest, self._recorded, self._save_began = {}, {}, {}
            self._write({"kind": "start", "ranks": list(ranks)})

    def stopped(self) -> None:
        """The workers stopped: write every rank's newest step not yet written."""
        with self._lock:
            for local, (step, time) in sorted(self._latest.items()):
                if self._recorded.get(local) != time:
                    self._write({"kind": "step", "rank": self._rank(local), "step": step}, time)
            self._recorded = {local: t for local, (_, t) in self._latest.items()}
            self._write({"kind": "stop"})

    def lines(self, lines: Iterable[tuple[int, str]]) -> None:
        """Stamp the steps in new log lines of local ranks."""
        now = self.clock.wall()
        with self._lock:
            for local, line in lines:
                step = step_of(line)
                if step is not None:
                    self._stamp(local, step, now)

    def step(self, local: int, step: int) -> None:
        """Stamp a step a local rank reported over the socket (``train_step``)."""
        now = self.clock.wall()
        with self._lock:
            self._stamp(local, step, now)

    def save(self, local: int, *, step: int | None, begin: bool) -> float | None:
        """A save began or ended on a local rank (the end writes the stall record).

        Returns:
            At the end, the seconds the rank waited since the begin (None at a begin, or an end
            without one).
        """
        now = self.clock.wall()
        with self._lock:
            if begin:
                self._save_began[local] = (step if isinstance(step, int) else None, now)
                return None
            began = self._save_began.pop(local, None)
            if began is None:
                return None
            seconds = max(0.0, now - began[1])
            record = {"kind": "save", "rank": self._rank(local), "step": began[0]}
            self._write(record | {"seconds": round(seconds, 4)}, began[1])
            return seconds

    def event(self, kind: str, local: int, **fields: Any) -> None:
        """Any other stamped fact of a local rank (``saved``, ``resume``)."""
        with self._lock:
            self._write({"kind": kind, "rank": self._rank(local), **fields})

    def merge(self, progress: dict[str, Any] | None) -> dict[str, Any] | None:
        """``progress`` plus the newest step all local ranks reached (``step``, ``stepTime``)."""
        with self._lock:
            if not self._latest or len(self._latest) < len(self._ranks):
                return progress
            step, time = min(self._latest.values())
        merged = dict(progress or {})
        entry = dict(merged.get(PROGRESS_PREFIX) or {})
        merged[PROGRESS_PREFIX] = entry | {"step": step, "stepTime": round(time, 3)}
        return merged

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _stamp(self, local: int, step: int, now: float) -> None:
        self._latest[local] = (step, now)
        if now - self._recorded.get(local, float("-inf")) >= STEP_RECORD_INTERVAL:
            self._recorded[local] = now
            self._write({"kind": "step", "rank": self._rank(local), "step": step}, now)

    def _rank(self, local: int) -> int:
        return self._ranks[local] if 0 <= local < len(self._ranks) else local

    def _write(self, record: dict[str, Any], time: float | None = None) -> None:
        if self._file is None or self._written >= MAX_TIMELINE_BYTES:
            return
        stamped = {"time": round(time if time is not None else self.clock.wall(), 4)}
        line = json.dumps(stamped | {"pod": self.pod, "restart": self._restart} | record) + "\n"
        self._written += len(line)
        self._file.write(line)
