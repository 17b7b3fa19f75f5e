"""Time, injected.

Pure code (policies, rule engines, state machines) never reads the clock itself; it receives a
`Clock` or a ``now`` argument, so tests drive it with `trainguard.testing.FakeClock` and never
sleep. ``wall()`` is for timestamps people read (conditions, events); ``monotonic()`` is for
measuring intervals (timeouts, rule windows), immune to clock steps.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """A source of wall-clock and monotonic seconds."""

    def wall(self) -> float:
        """Seconds since the epoch (for timestamps)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards (for intervals)."""
        ...


class SystemClock:
    """The real clock."""

    def wall(self) -> float:
        """``time.time()``."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()


def rfc3339(seconds: float) -> str:
    """``2026-11-23T10:00:00Z``-style UTC timestamp (what Kubernetes status fields use)."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc(seconds: float) -> str:
    """ISO 8601 UTC with microseconds (agent ``transitions`` times, as HyperPod's agent writes)."""
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()
