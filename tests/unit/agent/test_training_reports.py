"""Step reports from a worker to its agent over a real unix socket: throttled, per rank, reset."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainguard import ipc
from trainguard.agent.sockets import SocketServer
from trainguard.agent.training import TrainingTracker
from trainguard.checkpoint.report import AgentReporter
from trainguard.errors import AgentRefused


@pytest.fixture
def served() -> Iterator[tuple[TrainingTracker, str]]:
    clock = iter(float(t) for t in range(1000, 2000))
    tracker = TrainingTracker(lambda: next(clock))
    path = Path(tempfile.mkdtemp(prefix="tg-")) / "agent.sock"
    server = SocketServer(path)
    server.register(ipc.TRAIN_STEP, tracker.on_message)
    server.start()
    try:
        yield tracker, str(path)
    finally:
        server.close()


def test_first_step_is_sent_at_once_later_ones_throttled_last_always(
    served: tuple[TrainingTracker, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker, path = served
    monkeypatch.setenv("RANK", "3")
    reporter = AgentReporter(path)
    reporter.train_step(31, total=40, loss=0.25)
    reporter.train_step(32, total=40, loss=0.2)  # within the interval: not sent
    first = tracker.payload()
    assert first is not None
    assert (first.step, first.total, first.loss, first.first_step) == (31, 40, 0.25, 31)
    reporter.train_step(40, total=40, loss=float("nan"))  # the last step always goes
    last = tracker.payload()
    assert last is not None and last.step == 40 and last.first_step == 31
    assert last.ranks["3"].loss is None  # nan is not a loss to show
    reporter.close()


def test_reset_on_start_forgets_the_previous_run(served: tuple[TrainingTracker, str]) -> None:
    tracker, path = served
    AgentReporter(path).train_step(5, total=10)
    assert tracker.payload() is not None
    tracker.reset()
    assert tracker.payload() is None


def test_bad_report_is_refused_not_recorded(served: tuple[TrainingTracker, str]) -> None:
    tracker, path = served
    with ipc.AgentSocketClient(path) as client, pytest.raises(AgentRefused, match=">= 0"):
        client.request(ipc.TRAIN_STEP, step=-1)
    assert tracker.payload() is None
