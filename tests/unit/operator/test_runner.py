"""The operator loop over a real store: stand-by, lead, requeue, hand over on a graceful stop.

The Kubernetes store's cache is replaced by `ListFeed` (a synced feed whose listener the test
calls), so the loop's own rules are tested here; the operator over the test Kubernetes cluster
is tested in tests/integration/kube.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.unit.controller.harness import Harness, manifest
from tests.unit.controller.test_lease import challenger
from trainguard.controller.loop import Controller
from trainguard.controller.state import JobPhase, JobState
from trainguard.operator.health import Probes
from trainguard.operator.runner import Operator, OperatorSettings
from trainguard.operator.workqueue import WorkQueue


class ListFeed:
    """A change feed that is synced from the start; the test announces changes."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[str], None]] = []

    def subscribe(self, listener: Callable[[str], None]) -> None:
        self.listeners.append(listener)

    def synced(self) -> bool:
        return True

    def announce(self, key: str) -> None:
        for listener in self.listeners:
            listener(key)


def operator(controller: Controller, feed: ListFeed) -> Operator:
    settings = OperatorSettings(retry_period=0.05, idle_wait=0.05)
    return Operator(
        controller, feed, probes=Probes(ready=feed.synced), queue=WorkQueue(), settings=settings
    )


@pytest.fixture
def threads() -> Iterator[list[tuple[Operator, threading.Thread]]]:
    started: list[tuple[Operator, threading.Thread]] = []
    yield started
    for op, thread in started:
        op.stop()
        thread.join(timeout=10)


def start(op: Operator, threads: list[tuple[Operator, threading.Thread]]) -> threading.Thread:
    thread = threading.Thread(target=op.run, daemon=True)
    thread.start()
    threads.append((op, thread))
    return thread


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def phase(h: Harness) -> JobPhase:
    return JobState.model_validate(h.record().state).phase


def test_the_leader_reconciles_what_the_feed_names_and_the_standby_takes_over(
    tmp_path: Path, threads: list[tuple[Operator, threading.Thread]]
) -> None:
    h = Harness(tmp_path)
    leader_feed, standby_feed = ListFeed(), ListFeed()
    leader = operator(h.controller, leader_feed)
    start(leader, threads)
    wait_for(lambda: leader.probes.leading, "the first replica to lead")

    standby_controller = challenger(tmp_path, backend=h.backend)
    standby = operator(standby_controller, standby_feed)
    start(standby, threads)
    h.submit(manifest())
    leader_feed.announce("default/train")
    wait_for(lambda: phase(h) is JobPhase.RUNNING, "the job to run under the leader")
    assert not standby.probes.leading

    leader.stop()  # graceful: releases the Lease, so the standby need not wait it out
    wait_for(lambda: standby.probes.leading, "the standby to lead")
    for rank in (0, 1):
        h.agent(rank).finish()
    standby_feed.announce("default/train")
    wait_for(lambda: phase(h) is JobPhase.COMPLETED, "the standby to finish the job")
    assert len([p for p in h.pods() if not p.spare]) <= 2, "no duplicate pods"


def test_a_job_that_keeps_failing_backs_off(
    tmp_path: Path, threads: list[tuple[Operator, threading.Thread]]
) -> None:
    h = Harness(tmp_path)
    feed = ListFeed()
    op = operator(h.controller, feed)
    op.queue = WorkQueue(base_delay=0.05, max_delay=0.2)
    start(op, threads)
    wait_for(lambda: op.probes.leading, "leadership")
    h.controller.failed_keys = set()
    broken: list[str] = []
    original = h.controller.step

    def failing_step(only: list[str] | None = None) -> dict[str, JobPhase | None]:
        broken.extend(only or [])
        phases = original(only=only)
        h.controller.failed_keys = {"default/train"}
        return phases

    h.controller.step = failing_step  # type: ignore[method-assign]
    h.submit(manifest())
    feed.announce("default/train")
    wait_for(lambda: op.queue.failures("default/train") >= 3, "three backed-off retries")
    assert set(broken) == {"default/train"}
