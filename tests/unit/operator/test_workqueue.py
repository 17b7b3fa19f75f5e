"""The operator's work queue: deduplication, dirty re-queue, delays and per-key backoff."""

from __future__ import annotations

import threading

import pytest

from trainguard.operator.workqueue import ShutDown, WorkQueue
from trainguard.testing.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> WorkQueue:
    return WorkQueue(clock=clock, base_delay=1.0, max_delay=8.0)


def test_a_burst_of_adds_yields_the_key_once(queue: WorkQueue) -> None:
    for key in ("ns/a", "ns/b", "ns/a", "ns/a"):
        queue.add(key)
    assert queue.get_ready() == ["ns/a", "ns/b"]
    assert queue.get(timeout=0) is None


def test_a_key_added_while_processed_comes_back_after_done(queue: WorkQueue) -> None:
    queue.add("ns/a")
    assert queue.get(timeout=0) == "ns/a"
    queue.add("ns/a")
    assert queue.get(timeout=0) is None  # never handed to a second worker meanwhile
    queue.done("ns/a")
    assert queue.get(timeout=0) == "ns/a"
    queue.done("ns/a")
    assert queue.get(timeout=0) is None


def test_add_after_waits_for_the_delay(queue: WorkQueue, clock: FakeClock) -> None:
    queue.add_after("ns/a", 2.0)
    assert queue.get(timeout=0) is None
    clock.advance(1.9)
    assert len(queue) == 0
    clock.advance(0.2)
    assert queue.get(timeout=0) == "ns/a"


def test_backoff_doubles_up_to_the_cap_and_forget_resets_it(
    queue: WorkQueue, clock: FakeClock
) -> None:
    delays = [queue.add_rate_limited("ns/a") for _ in range(5)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert queue.failures("ns/a") == 5
    queue.forget("ns/a")
    assert queue.failures("ns/a") == 0
    assert queue.add_rate_limited("ns/a") == 1.0
    clock.advance(1.0)
    assert queue.get_ready() == ["ns/a"]  # the five earlier delayed adds collapse into one


def test_delayed_key_already_queued_is_not_duplicated(queue: WorkQueue, clock: FakeClock) -> None:
    queue.add_after("ns/a", 1.0)
    queue.add("ns/a")
    clock.advance(1.0)
    assert queue.get_ready() == ["ns/a"]


def test_shut_down_wakes_a_blocked_worker() -> None:
    queue = WorkQueue()
    raised = threading.Event()

    def worker() -> None:
        try:
            queue.get()
        except ShutDown:
            raised.set()

    thread = threading.Thread(target=worker)
    thread.start()
    queue.shut_down()
    thread.join(timeout=5)
    assert raised.is_set()
    queue.add("ns/a")  # dropped after shut down
    with pytest.raises(ShutDown):
        queue.get(timeout=0)


def test_a_blocked_get_returns_a_key_added_from_another_thread() -> None:
    queue = WorkQueue()
    threading.Timer(0.05, queue.add, args=("ns/a",)).start()
    assert queue.get(timeout=10) == "ns/a"


def test_bad_delays_are_refused() -> None:
    with pytest.raises(ValueError, match="base_delay"):
        WorkQueue(base_delay=0)
