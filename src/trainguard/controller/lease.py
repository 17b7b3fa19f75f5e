"""Leader election of controllers over the store's one lease row, judged on monotonic clocks.

One controller may act on a store at a time. The holder renews the lease at the start of every
step and from a background thread (so a step that waits 30 s for a pod to die does not lose
it); a challenger takes the lease over only once the holder has stopped renewing.

How staleness is judged — Kubernetes' leader-election rule, not timestamps compared across
processes. The lease row carries a renewal counter and the duration the holder promises to
renew within. A challenger remembers when, on *its own* monotonic clock, it first saw the
current ``(holder, renewals)``; once that value has stayed unchanged for ``duration`` seconds it
takes the lease with a compare-and-swap on exactly that value (`Store.take_lease`). No
process ever subtracts a time written by another process, so a wall-clock step (NTP, a VM
resumed, ``date -s``) can neither make a live lease look stale (+1 h: two leaders) nor a dead
one look fresh (-2 h: no leader for two hours). We considered storing ``CLOCK_MONOTONIC`` in
the row, which is system-wide on Linux; we chose the counter because it needs no shared clock
at all: it survives the store being read from another machine or container, a reboot (the
monotonic clock restarts from zero, so a stored reading from the last boot would look fresh
for as long as the old uptime) and platforms whose monotonic clock is per process. Its cost is
that a challenger must watch for ``duration`` seconds before it can take over a holder that is
alive but silent (a holder on this host whose process is gone is taken over at once; on
another host — operator replicas in other pods — a pid means nothing here, so only silence counts).

Why a holder cannot act beside its successor: a successor's takeover happens at least
``duration`` seconds, on its clock, after it first saw the holder's last renewal, and the holder
stops acting as soon as it sees the row name someone else: at its next renewal, in the renewer
thread, in every store write (the store is fenced: each transaction checks the holder inside
itself, `Store.fence`) and in `check`, which the controller calls right before it starts
or kills a pod process. A holder stalled mid-step (SIGSTOP) and resumed after a takeover thus
fails its next write or process launch with `LeaseLostError` and exits.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from trainguard.clock import Clock
from trainguard.errors import ConflictError, LeaseLostError
from trainguard.liveness import process_alive
from trainguard.store.base import Store
from trainguard.store.records import Lease

log = logging.getLogger(__name__)

LEASE_DURATION = 10.0
"""Seconds a holder promises to renew within; a challenger waits this long, on its own
monotonic clock, before taking over a silent holder whose process is still alive."""
RENEWALS_PER_DURATION = 4
"""The renewer thread renews this many times per `LEASE_DURATION`, so a few slow SQLite
writes in a row do not cost the lease."""


def new_holder_name() -> str:
    """``<hostname>-<pid>-<random>``: unique per controller process, and says its host."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def same_host(holder: str) -> bool:
    """Whether ``holder`` (a `new_holder_name`) runs on this host, so its pid means something
    here. Operator replicas run in different pods: a pid from another pod's namespace says
    nothing about that process, so such a holder is only taken over once it stops renewing."""
    parts = holder.rsplit("-", 2)
    return len(parts) == 3 and parts[0] == socket.gethostname()


class Leadership:
    """One controller's side of the lease: acquire, renew, check, release.

    Args:
        store: the store whose lease this is (fenced once the lease is held).
        clock: monotonic time for the challenger's observation; wall time only for display.
        holder: this controller's unique name.
        duration: seconds this controller promises to renew within.
    """

    def __init__(self, *, store: Store, clock: Clock, holder: str, duration: float) -> None:
        self.store, self.clock, self.holder, self.duration = store, clock, holder, duration
        self.callback_url: str | None = None
        self.metrics_url: str | None = None
        self.held = False
        self.lost = threading.Event()
        self._renewals = -1
        self._observed: tuple[tuple[str, int], float] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def try_acquire(self) -> bool:
        """Take the lease if it is free, ours, held by a dead process or silent for too long.

        Raises:
            ConflictError: the holder renewed while we watched: it is alive and acting.
        """
        now = self.clock.monotonic()
        current = self.store.current_lease()
        if current is None or current.holder == self.holder:
            expect = None if current is None else (current.holder, current.renewals)
        elif same_host(current.holder) and not process_alive(current.pid):
            log.info("taking over from controller pid %s, which is gone", current.pid)
            expect = (current.holder, current.renewals)
        elif not self._silent_for_long(current, now):
            return False
        else:
            log.warning(
                "controller %s (pid %s) did not renew for %.1f s: taking over",
                current.holder, current.pid, current.duration,
            )  # fmt: skip
            expect = (current.holder, current.renewals)
        return self._swap(expect)

    def watch_again(self) -> None:
        """Forget what was observed of the holder: a standby replica keeps waiting after the
        holder was seen renewing (`try_acquire` raised `ConflictError`)."""
        self._observed = None

    def _silent_for_long(self, current: Lease, now: float) -> bool:
        key = (current.holder, current.renewals)
        if self._observed is None or self._observed[0] != key:
            if self._observed is not None and self._observed[0][0] == current.holder:
                raise ConflictError(
                    f"another controller (pid {current.pid}) runs for this store and renews"
                )
            self._observed = (key, now)
            return False
        return now - self._observed[1] >= current.duration

    def _swap(self, expect: tuple[str, int] | None) -> bool:
        with self._lock:
            if self._write(expect) is None:
                return False
            self.held, self._observed = True, None
        self.store.fence(self.holder)
        return True

    def _write(self, expect: tuple[str, int] | None) -> Lease | None:
        lease = Lease(
            self.holder, os.getpid(), self.clock.wall(), self.callback_url, self.metrics_url,
            duration=self.duration,
        )  # fmt: skip
        taken = self.store.take_lease(lease, expect=expect)
        if taken is not None:
            self._renewals = taken.renewals
        return taken

    def renew(self) -> None:
        """Renew the lease we hold (exactly the renewal we wrote last, or it was taken).

        Raises:
            LeaseLostError: another controller holds it now, or it is gone.
        """
        with self._lock:
            if not self.lost.is_set() and self._write((self.holder, self._renewals)) is not None:
                return
            self.lost.set()
            self.held = False
        current = self.store.current_lease()
        raise LeaseLostError(
            f"controller {self.holder} lost its lease"
            + (f" to {current.holder} (pid {current.pid})" if current else "")
        )

    def check(self) -> None:
        """Raise `LeaseLostError` unless the lease still names us (before starting processes)."""
        current = self.store.current_lease()
        if self.lost.is_set() or current is None or current.holder != self.holder:
            self.lost.set()
            raise LeaseLostError(f"controller {self.holder} no longer holds the lease; not acting")

    def start_renewing(self, on_lost: threading.Event) -> None:
        """Renew from a background thread; set ``on_lost`` too when the lease is lost."""
        interval = self.duration / RENEWALS_PER_DURATION

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.renew()
                except LeaseLostError as exc:
                    log.error("%s", exc)
                    on_lost.set()
                    return
                except Exception:
                    log.exception("renewing the lease failed; retrying")

        self._thread = threading.Thread(target=loop, name="lease-renewer", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and drop the lease if we hold it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.store.fence(None)
        self.store.release_lease(self.holder)
        self.held = False
