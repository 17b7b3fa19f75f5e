"""One background thread per manager for the work a save leaves behind.

Checksums of memory shards, durable writes and their reports run here, in submission order,
so the training thread only pays for the copy into shared memory. The queue itself is not what
bounds memory: every queued task pins a memory slot, and when all slots are committed or pinned
the next save waits for one (`trainguard.checkpoint.memory`). Failures are logged, counted and
kept (`errors`), never raised into the training loop: a durable tier that is full or down must
not stop training that the memory tier still protects.

The thread runs at a lower CPU priority (``nice`` `BACKGROUND_NICE` by default; Linux applies a
thread's nice value to that thread alone), so on a node whose cores the workers keep busy the
checksum and the durable write take the idle time instead of slowing the steps beside them.
It still progresses under full load (nice 10 weighs about a tenth of nice 0), so pinned slots
are released and saves do not end up waiting for them.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from trainguard.errors import TrainguardError

log = logging.getLogger("trainguard.checkpoint")

Task = Callable[[], None]
BACKGROUND_NICE = 10


def lower_priority(nice: int) -> None:
    """Raise the calling thread's nice value by ``nice`` (Linux: per thread; elsewhere no-op)."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
    except OSError as exc:
        log.warning("checkpoint: cannot lower the background thread's priority: %s", exc)


@dataclass
class TaskErrors:
    """Failures of background tasks.

    Attributes:
        count: how many tasks failed.
        last: the message of the latest failure.
        by_kind: failures per error class name (``StorageFull``, ``CheckpointError``...).
    """

    count: int = 0
    last: str | None = None
    by_kind: dict[str, int] = field(default_factory=dict)


class Background:
    """A FIFO worker thread; `drain` waits for everything submitted so far.

    Args:
        name: the thread's name.
        nice: niceness added to the thread's own (0: as the training thread; 19: idle).
    """

    def __init__(self, name: str = "trainguard-checkpoint", *, nice: int = BACKGROUND_NICE) -> None:
        self._queue: queue.Queue[tuple[str, Task] | None] = queue.Queue()
        self._nice = nice
        self.errors = TaskErrors()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, what: str, task: Task) -> None:
        """Queue ``task``; ``what`` names it in error messages."""
        if not self._thread.is_alive():
            raise RuntimeError("checkpoint background thread is closed")
        self._queue.put((what, task))

    @property
    def pending(self) -> int:
        """Tasks submitted and not finished yet."""
        return self._queue.unfinished_tasks

    def drain(self) -> None:
        """Block until every task submitted so far has run."""
        self._queue.join()

    def close(self) -> None:
        """Drain, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        lower_priority(self._nice)
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._execute(*item)
            finally:
                self._queue.task_done()

    def _execute(self, what: str, task: Task) -> None:
        try:
            task()
        except TrainguardError as exc:
            self._record(what, exc)
            log.error("checkpoint: %s failed: %s", what, exc)
        except Exception as exc:  # a bug or a library error: keep training, say it loudly
            self._record(what, exc)
            log.exception("checkpoint: %s failed unexpectedly", what)

    def _record(self, what: str, exc: Exception) -> None:
        kind = type(exc).__name__
        self.errors.count += 1
        self.errors.last = f"{what}: {exc}"
        self.errors.by_kind[kind] = self.errors.by_kind.get(kind, 0) + 1
