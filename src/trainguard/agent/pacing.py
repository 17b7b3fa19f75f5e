"""When the agent's monitor loop runs its next pass: at once on a worker exit or a request,
otherwise at the housekeeping pace.

The loop used to sleep a fixed 50 ms between passes, so that a worker exit was reported well
within 200 ms, and every pass also read the logs, fed the rules, sampled the workers and rebuilt
the status facts: 20 times a second, most of the agent's CPU while its workers train (2.5 % of
a core, issue 18). Exits and requests are events, so the loop now waits for them instead: one
`select.poll` on a pidfd per worker (readable once that worker has exited) and a wake-up pipe
(written by the HTTP thread after each request and by the agent's signal handler). A pass that
an event woke handles requests and exits only; the rest (`housekeeping_due`) runs every
`HOUSEKEEPING_S`, fast enough for log rules whose windows are seconds. Where the kernel has no
pidfds (Linux < 5.3, other systems) the loop also wakes every ``fallback_interval`` to poll the
workers, as before.

Called from the loop's (main) thread, except `wake`, which any thread and signal handlers call.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
from collections.abc import Sequence

from trainguard.clock import Clock

HOUSEKEEPING_S = 0.25
"""Seconds between two passes that read logs, feed rules, sample workers and refresh facts."""


class MonitorPace:
    """The monitor loop's sleep: until the next housekeeping, a worker's exit or a wake-up.

    Args:
        clock: time source (its monotonic clock schedules housekeeping).
        fallback_interval: the longest sleep while some worker has no pidfd.
        housekeeping_interval: seconds between housekeeping passes.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        fallback_interval: float,
        housekeeping_interval: float = HOUSEKEEPING_S,
    ) -> None:
        self._clock = clock
        self._fallback = fallback_interval
        self._interval = housekeeping_interval
        self._next_housekeeping = float("-inf")
        self._read, self._write = os.pipe()
        self._open = True
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._poller = select.poll()
        self._poller.register(self._read, select.POLLIN)
        self._pidfds: list[int] = []
        self._blind = False  # some worker has no pidfd: poll at the fallback interval

    def wake(self) -> None:
        """End the current (or next) wait at once; safe from any thread or signal handler."""
        if not self._open:  # after `close` the number may belong to another file by now
            return
        with contextlib.suppress(BlockingIOError):  # a full pipe: a wake-up is pending anyway
            os.write(self._write, b"\0")

    def watch(self, pids: Sequence[int]) -> None:
        """Wake when any of ``pids`` exits (replaces the pids watched before)."""
        self.unwatch()
        for pid in pids:
            fd = _pidfd(pid)
            if fd is None:
                self._blind = True
                continue
            self._pidfds.append(fd)
            self._poller.register(fd, select.POLLIN)

    def unwatch(self) -> None:
        """Watch no worker (they were stopped)."""
        for fd in self._pidfds:
            self._poller.unregister(fd)
            os.close(fd)
        self._pidfds, self._blind = [], False

    def housekeeping_due(self) -> bool:
        """Whether this pass must do the periodic work (then the next one is scheduled)."""
        now = self._clock.monotonic()
        if now < self._next_housekeeping:
            return False
        self._next_housekeeping = now + self._interval
        return True

    def wait(self) -> None:
        """Sleep until housekeeping is due, a watched worker exits or `wake` is called."""
        timeout = max(0.0, self._next_housekeeping - self._clock.monotonic())
        if self._blind:
            timeout = min(timeout, self._fallback)
        for fd, _ in self._poller.poll(timeout * 1000):
            if fd == self._read:
                self._drain()
            else:  # exited: readable for good, so the next pass reaps it and we stop polling it
                self._poller.unregister(fd)
                self._pidfds.remove(fd)
                os.close(fd)

    def close(self) -> None:
        """Close the pidfds and the pipe (again: nothing happens)."""
        self.unwatch()
        if self._open:
            self._open = False
            os.close(self._read)
            os.close(self._write)

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass


def _pidfd(pid: int) -> int | None:
    """A pidfd of ``pid``, or None where pidfds do not exist (the caller polls instead)."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.ESRCH, errno.EINVAL, errno.EPERM):
            return None
        raise
    return fd
