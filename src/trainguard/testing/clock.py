"""A clock that moves only when a test says so.

`FakeClock.step_wall` moves the wall clock alone, in either direction, the way NTP, a resumed
VM or ``date -s`` does, so tests can check that intervals are measured on the monotonic clock.
"""

from __future__ import annotations


class FakeClock:
    """Implements `trainguard.clock.Clock`; ``advance`` moves both wall and monotonic time."""

    def __init__(self, wall: float = 1_800_000_000.0, monotonic: float = 1000.0) -> None:
        self._wall = wall
        self._monotonic = monotonic

    def wall(self) -> float:
        """Current fake epoch seconds."""
        return self._wall

    def monotonic(self) -> float:
        """Current fake monotonic seconds."""
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError("a FakeClock never goes backwards")
        self._wall += seconds
        self._monotonic += seconds

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock by ``seconds`` (either sign); monotonic time does not move."""
        self._wall += seconds
