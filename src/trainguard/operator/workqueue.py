"""A deduplicating work queue with per-key backoff, as client-go's rate-limited queue behaves.

Watch events arrive in bursts (a pod's status changes five times while it starts); reconciling
a job once per burst is enough, because a reconcile step reads the job's whole current state.
So a key sits in the queue at most once (`add` of a queued key is a no-op), a key being worked
on is never handed to a second worker (an `add` while it is processed marks it dirty and it
comes back after `done`), and a key whose reconcile failed comes back after an exponentially
growing delay (`add_rate_limited`) until it succeeds (`forget`). Delayed adds (`add_after`) let
a running job be looked at again after the loop interval even when no event arrives — agents
are polled, and timeouts expire, without any watch event.

Time is injected (`trainguard.clock.Clock`), so the backoff is tested without sleeping.
"""

from __future__ import annotations

import heapq
import itertools
import threading

from trainguard.clock import Clock, SystemClock

BASE_DELAY = 0.5
"""Seconds before the first retry of a failed key."""
MAX_DELAY = 60.0
"""Cap of the exponential backoff."""


class ShutDown(Exception):
    """The queue was shut down; workers return."""


class WorkQueue:
    """Keys to reconcile: deduplicated, delayed, and backed off per key.

    Args:
        clock: time source for delays.
        base_delay: first backoff delay in seconds.
        max_delay: backoff cap in seconds.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY,
    ) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        self.clock = clock or SystemClock()
        self.base_delay, self.max_delay = base_delay, max_delay
        self._cond = threading.Condition()
        self._queue: list[str] = []
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._delayed: list[tuple[float, int, str]] = []
        self._sequence = itertools.count()
        self._failures: dict[str, int] = {}
        self._shut_down = False

    def add(self, key: str) -> None:
        """Queue ``key`` unless it is queued already (or mark it dirty while it is processed)."""
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: str) -> None:
        if self._shut_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._cond.notify()

    def add_after(self, key: str, delay: float) -> None:
        """Queue ``key`` once ``delay`` seconds have passed (at once when ``delay`` <= 0)."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shut_down:
                return
            ready_at = self.clock.monotonic() + delay
            heapq.heappush(self._delayed, (ready_at, next(self._sequence), key))
            self._cond.notify()

    def add_rate_limited(self, key: str) -> float:
        """Queue ``key`` after its backoff delay (doubling per failure); returns the delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = min(self.base_delay * 2.0**failures, self.max_delay)
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        """``key`` succeeded: its next failure starts the backoff afresh."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        """Consecutive failures of ``key`` since it last succeeded."""
        with self._cond:
            return self._failures.get(key, 0)

    def get(self, timeout: float | None = None) -> str | None:
        """The next key to work on (marked as processing), or None after ``timeout`` seconds.

        Raises:
            ShutDown: the queue was shut down.
        """
        with self._cond:
            deadline = None if timeout is None else self.clock.monotonic() + timeout
            while True:
                if self._shut_down:
                    raise ShutDown
                self._promote_due()
                if self._queue:
                    key = self._queue.pop(0)
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                wait = self._wait_seconds(deadline)
                if wait is not None and wait <= 0:
                    return None
                self._cond.wait(wait)

    def get_ready(self) -> list[str]:
        """Every key ready now (marked as processing), without waiting."""
        keys: list[str] = []
        while (key := self.get(timeout=0)) is not None:
            keys.append(key)
        return keys

    def done(self, key: str) -> None:
        """Finished with ``key``; if it was added meanwhile, it is queued again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def __len__(self) -> int:
        """Keys queued and ready now (delayed ones not counted)."""
        with self._cond:
            self._promote_due()
            return len(self._queue)

    def shut_down(self) -> None:
        """Wake every waiting worker with `ShutDown`; later adds are dropped."""
        with self._cond:
            self._shut_down = True
            self._cond.notify_all()

    def _promote_due(self) -> None:
        now = self.clock.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            self._add_locked(key)

    def _wait_seconds(self, deadline: float | None) -> float | None:
        """How long to sleep: until the first delayed key or the deadline, whichever is first."""
        now = self.clock.monotonic()
        candidates = [t - now for t in (deadline,) if t is not None]
        if self._delayed:
            candidates.append(self._delayed[0][0] - now)
        return min(candidates) if candidates else None
