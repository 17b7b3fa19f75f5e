"""The monitor loop's pace: housekeeping on a schedule, wake-ups from any thread."""

from __future__ import annotations

import threading

from trainguard.agent.pacing import MonitorPace
from trainguard.testing.clock import FakeClock

LONG = 600.0  # a housekeeping interval no test waits out: only a wake-up ends the wait


def test_housekeeping_is_due_once_per_interval() -> None:
    clock = FakeClock()
    pace = MonitorPace(clock=clock, fallback_interval=0.05, housekeeping_interval=0.25)
    assert pace.housekeeping_due()
    assert not pace.housekeeping_due()
    clock.advance(0.2)
    assert not pace.housekeeping_due()
    clock.advance(0.05)
    assert pace.housekeeping_due()
    pace.close()


def test_a_wake_up_from_another_thread_ends_the_wait() -> None:
    pace = MonitorPace(clock=FakeClock(), fallback_interval=LONG, housekeeping_interval=LONG)
    assert pace.housekeeping_due()
    waker = threading.Timer(0.05, pace.wake)
    waker.start()
    pace.wait()  # returns only because of the wake-up
    waker.join()
    pace.wake()  # a wake-up before the wait is not lost either
    pace.wait()
    pace.close()


def test_close_twice_and_wake_after_close_do_nothing() -> None:
    pace = MonitorPace(clock=FakeClock(), fallback_interval=0.05)
    pace.close()
    pace.close()
    pace.wake()
