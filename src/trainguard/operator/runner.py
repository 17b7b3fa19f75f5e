"""The operator's loop: stand by until this replica leads, then reconcile what the queue hands out.

Kubernetes controllers are event-driven: a watch event names the object that changed, and only
that object is reconciled. Here the store's list+watch cache (`ChangeFeed`) names the job a
change belongs to (the job itself, one of its pods, a node hosting it) and the key goes into a
deduplicating `WorkQueue`; the loop takes every ready key and runs one `Controller.step` over
just those jobs. A job that is not finished comes back after the controller's loop interval
(agents are polled and timeouts expire without any event), an agent's status push brings every
active job back at once, a job whose step failed backs off exponentially, and every job is
queued again each `resync` seconds in case an event was missed.

Leadership is the controller's Lease (`trainguard.controller.lease`, stored by the Kubernetes
store as a ``coordination.k8s.io`` Lease). A standby replica stays alive and ready, beating the
liveness probe, and tries the Lease every `OperatorSettings.retry_period`. A leader that loses
the Lease stops at once (`LeaseLostError`): exit non-zero and let the Deployment restart it as
a standby — the same rule as controller-runtime's "leader election lost". A graceful stop
(SIGTERM) releases the Lease, so the standby takes over without waiting out its duration.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from trainguard.controller.loop import Controller
from trainguard.controller.state import TERMINAL, JobPhase
from trainguard.errors import ConflictError, LeaseLostError
from trainguard.operator.health import Probes
from trainguard.operator.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)


class ChangeFeed(Protocol):
    """What the store's cache tells the operator."""

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(job_key)`` whenever something that job depends on changes."""
        ...

    def synced(self) -> bool:
        """Whether every cache has listed its objects once."""
        ...


@dataclass(frozen=True)
class OperatorSettings:
    """Timings of the operator loop (the controller's own are `ControllerSettings`)."""

    resync: float = 30.0
    """Seconds between queueing every job again (a missed event costs at most this)."""
    retry_period: float = 2.0
    """Seconds between a standby replica's attempts at the Lease."""
    idle_wait: float = 1.0
    """Seconds the loop waits for a key before beating the liveness probe again."""


class Operator:
    """Runs ``controller`` from a work queue fed by ``feed``; see the module docstring."""

    def __init__(
        self,
        controller: Controller,
        feed: ChangeFeed,
        *,
        probes: Probes,
        queue: WorkQueue | None = None,
        settings: OperatorSettings | None = None,
    ) -> None:
        self.controller, self.feed, self.probes = controller, feed, probes
        self.queue = queue if queue is not None else WorkQueue(clock=controller.clock)
        self.settings = settings or OperatorSettings()
        self._stop = threading.Event()
        self._active: set[str] = set()
        self._pushes: threading.Thread | None = None

    def run(self) -> None:
        """Stand by, lead, reconcile until `stop`.

        Raises:
            LeaseLostError: this replica led and lost the Lease; the process must exit.
        """
        self.feed.subscribe(self.queue.add)
        if not self._stand_by():
            return
        self.controller.start(wait=0)
        self.probes.leading = True
        log.info("leading as %s", self.controller.holder)
        self._pushes = threading.Thread(target=self._on_pushes, name="pushes", daemon=True)
        self._pushes.start()
        try:
            self._reconcile_until_stopped()
        finally:
            self.probes.leading = False
            self.controller.close()

    def stop(self) -> None:
        """Finish the current step, release the Lease and return from `run`."""
        self._stop.set()
        self.queue.shut_down()
        self.controller.stop()

    def _stand_by(self) -> bool:
        """Wait for the caches and the Lease; False when stopped first."""
        leadership = self.controller.leadership
        while not self._stop.is_set():
            self.probes.beat()
            if self.feed.synced():
                try:
                    if leadership.try_acquire():
                        return True
                except ConflictError:
                    leadership.watch_again()  # the holder renews: keep standing by
            self._stop.wait(self.settings.retry_period)
        return False

    def _reconcile_until_stopped(self) -> None:
        clock = self.controller.clock
        next_resync = clock.monotonic()
        while not self._stop.is_set():
            self.probes.beat()
            if self.controller.leadership.lost.is_set():
                raise LeaseLostError(f"operator {self.controller.holder} lost the Lease")
            if clock.monotonic() >= next_resync:
                self._queue_all()
                next_resync = clock.monotonic() + self.settings.resync
            try:
                first = self.queue.get(timeout=self.settings.idle_wait)
            except ShutDown:
                return
            if first is not None:
                self._reconcile([first, *self.queue.get_ready()])

    def _reconcile(self, keys: list[str]) -> None:
        try:
            phases = self.controller.step(only=keys)
        except LeaseLostError:
            raise
        finally:
            for key in keys:
                self.queue.done(key)
        self._requeue(keys, phases)

    def _requeue(self, keys: Iterable[str], phases: dict[str, JobPhase | None]) -> None:
        interval = self.controller.deps.settings.loop_interval
        for key in keys:
            if key in self.controller.failed_keys:
                self.queue.add_rate_limited(key)
                continue
            self.queue.forget(key)
            phase = phases.get(key)
            if phase is None or phase in TERMINAL:
                self._active.discard(key)
            else:
                self._active.add(key)
                self.queue.add_after(key, interval)

    def _queue_all(self) -> None:
        for record in self.controller.store.list_jobs():
            self.queue.add(record.key)

    def _on_pushes(self) -> None:
        """An agent's status push (or a lost Lease) wakes the hub: look at active jobs now."""
        wakeup = self.controller.hub.wakeup
        while not self._stop.is_set():
            if wakeup.wait(timeout=self.settings.idle_wait):
                wakeup.clear()
                for key in list(self._active):
                    self.queue.add(key)
