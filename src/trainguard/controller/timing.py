"""Time elapsed since a stored wall-clock stamp, measured on the monotonic clock.

A job's state keeps wall-clock stamps (``phase_since``, ``first_running_at``, ``plr_times``,
the fault's ``detected_at``, the record's ``created_at`` and ``finished_at``): they survive a
controller restart and people read them. Subtracting them from the wall clock *now* broke
whenever the clock stepped: +1 h made the 180 s ready timeout fire at once (a false
``PodLost`` that used up a restart), -2 h froze the 90 s stop timeout for two hours and
reported a remediation time of an hour.

So the controller measures how long ago a stamp was from the moment it *first saw* that stamp,
on the monotonic clock::

    elapsed = max(0, wall_at_first_sight - stamp) + (monotonic_now - monotonic_at_first_sight)

Stamps this controller sets are seen in the step that sets them (the reconciler notes every
stamp of the state at the end of each step), so their elapsed time is purely monotonic and a
wall-clock step changes nothing. A stamp written before this controller started (a restarted
controller, ``created_at`` from the CLI, an agent's detection time) contributes the wall
difference once, at first sight, clamped at zero — the best any process can do without a clock
shared across restarts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

MAX_STAMPS_PER_JOB = 256
"""Stamps remembered per job (least recently used dropped first); a job holds a handful plus
one per restart inside the restart policy's window."""


class Stopwatch:
    """First sightings of wall-clock stamps, per job, on the monotonic clock."""

    def __init__(self) -> None:
        self._seen: dict[str, OrderedDict[float, tuple[float, float]]] = {}

    def elapsed(self, owner: str, stamp: float, *, wall: float, mono: float) -> float:
        """Seconds since ``stamp`` (epoch seconds) as of ``wall``/``mono`` (now, both clocks)."""
        seen = self._seen.setdefault(owner, OrderedDict())
        first = seen.get(stamp)
        if first is None:
            first = (max(0.0, wall - stamp), mono)
            seen[stamp] = first
            if len(seen) > MAX_STAMPS_PER_JOB:
                seen.popitem(last=False)
        else:
            seen.move_to_end(stamp)
        already, since = first
        return already + max(0.0, mono - since)

    def note(self, owner: str, stamps: Iterable[float | None], *, wall: float, mono: float) -> None:
        """Remember ``stamps`` now (the ones set in this step start at their true age)."""
        for stamp in stamps:
            if stamp is not None:
                self.elapsed(owner, stamp, wall=wall, mono=mono)

    def forget(self, owner: str) -> None:
        """Drop a removed job's stamps."""
        self._seen.pop(owner, None)
