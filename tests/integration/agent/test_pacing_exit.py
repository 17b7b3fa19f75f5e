"""The monitor loop's wait ends when a watched worker exits (a real process, killed for real)."""

from __future__ import annotations

import signal
import subprocess
import threading

from trainguard.agent.pacing import MonitorPace
from trainguard.testing.clock import FakeClock

LONG = 600.0  # no test waits this out: only the exit (or the fallback poll) ends the wait


def test_a_killed_worker_ends_the_wait_and_is_watched_no_more() -> None:
    worker = subprocess.Popen(["sleep", "600"])
    pace = MonitorPace(clock=FakeClock(), fallback_interval=LONG, housekeeping_interval=LONG)
    try:
        assert pace.housekeeping_due()
        pace.watch([worker.pid])
        killer = threading.Timer(0.05, worker.send_signal, args=(signal.SIGKILL,))
        killer.start()
        pace.wait()  # returns only because the worker died
        killer.join()
        assert worker.wait(timeout=5) == -signal.SIGKILL
        pace.wake()  # the dead worker's pidfd no longer counts: this wait needs the wake-up
        pace.wait()
    finally:
        worker.kill()
        worker.wait()
        pace.close()


def test_a_worker_without_pidfd_is_polled_at_the_fallback_interval() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: no pidfd can be opened for it any more
    pace = MonitorPace(clock=FakeClock(), fallback_interval=0.01, housekeeping_interval=LONG)
    try:
        assert pace.housekeeping_due()
        pace.watch([gone.pid])
        pace.wait()  # the fallback interval ends it, not the housekeeping one
    finally:
        pace.close()
