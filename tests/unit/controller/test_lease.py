"""Leader election and fencing (issue 12, item 3): two controllers over one real SQLite file.

Each controller has its own FakeClock with its own origins, as two processes have: nothing may
depend on comparing one process's clock readings with another's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.controller.harness import Harness, manifest
from trainguard.backends.base import PodLaunch
from trainguard.controller.agents import AgentHub
from trainguard.controller.deps import ControllerSettings
from trainguard.controller.lease import LEASE_DURATION
from trainguard.controller.loop import Controller
from trainguard.controller.state import JobPhase
from trainguard.errors import ConflictError, LeaseLostError
from trainguard.store import PodRecord, SqliteStore
from trainguard.testing import FakeBackend, FakeClock


def challenger(tmp_path: Path, backend: FakeBackend | None = None) -> Controller:
    """A second controller: its own connection to the same file and its own clock (and the
    same fake pods as the first, when given, as on a real cluster)."""
    store = SqliteStore(tmp_path / "state.db")
    backend = backend or FakeBackend(store)
    return Controller(
        store=store,
        backend=backend,
        hub=AgentHub(client_factory=backend.client_factory),
        clock=FakeClock(wall=2_500_000_000.0, monotonic=5.0),
        settings=ControllerSettings(poll_interval=0),
        serve_callbacks=False,
    )


def fake_clock(controller: Controller) -> FakeClock:
    assert isinstance(controller.clock, FakeClock)
    return controller.clock


def take_over(b: Controller) -> None:
    """B watches the silent holder for a full lease duration on its own clock, then takes it."""
    assert not b.leadership.try_acquire()
    fake_clock(b).advance(LEASE_DURATION - 0.5)
    assert not b.leadership.try_acquire()
    fake_clock(b).advance(0.5)
    assert b.leadership.try_acquire()


def test_a_silent_holder_is_taken_over_and_its_next_step_stops(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.submit(manifest())
    assert h.step() is JobPhase.CREATING
    b = challenger(tmp_path, h.backend)
    take_over(b)
    version, pods = h.record().version, [p.name for p in h.pods()]
    with pytest.raises(LeaseLostError, match="lost its lease"):
        h.step()
    with pytest.raises(LeaseLostError):
        h.step()
    assert (h.record().version, [p.name for p in h.pods()]) == (version, pods)
    assert b.step()["default/train"] is JobPhase.STARTING


def test_a_renewing_holder_is_never_taken_over_whatever_the_wall_clocks_do(
    tmp_path: Path,
) -> None:
    """+1 h on the challenger, -2 h on the holder: with wall-clock heartbeats either one made
    the live holder's lease look stale, and two controllers acted."""
    h = Harness(tmp_path)
    h.submit(manifest())
    h.step()
    b = challenger(tmp_path)
    assert not b.leadership.try_acquire()
    fake_clock(b).step_wall(3600)
    h.clock.step_wall(-7200)
    fake_clock(b).advance(1.0)
    h.step(advance=1.0)
    with pytest.raises(ConflictError, match="renews"):
        b.leadership.try_acquire()
    with pytest.raises(ConflictError, match="runs for this store"):
        b.start()


class TakenOverMidStep(FakeBackend):
    """While the holder launches its first pod, a successor takes the lease (a SIGSTOP there)."""

    def __init__(self, store: SqliteStore, successor: Controller) -> None:
        super().__init__(store)
        self.successor, self.launched = successor, 0

    def create_pod(self, launch: PodLaunch, *, now: float) -> PodRecord:
        self.launched += 1
        if self.launched == 1:
            take_over(self.successor)
        return super().create_pod(launch, now=now)


def test_a_holder_resumed_mid_step_after_a_takeover_writes_and_launches_nothing(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    b = challenger(tmp_path)
    h.backend = TakenOverMidStep(h.store, b)
    h.controller = h.new_controller()
    h.submit(manifest())
    before = h.record().version
    with pytest.raises(LeaseLostError):
        h.step()
    assert h.backend.launched == 1, "no pod launched once the successor held the lease"
    assert h.pods() == [], "the pod record of the launch in flight was refused"
    assert h.record().version == before, "no status write"
    assert b.step()["default/train"] is JobPhase.CREATING
    assert len(b.store.list_pods("default", "train")) == 2


def test_a_controller_whose_lease_holder_died_takes_over_at_once(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.step()
    store = SqliteStore(tmp_path / "state.db")
    with store.transaction(fenced=False):
        store._conn.execute("UPDATE controller_lease SET pid=2147483646")
    b = challenger(tmp_path)
    assert b.leadership.try_acquire()


def test_a_holder_on_another_host_is_judged_by_silence_not_by_its_pid(tmp_path: Path) -> None:
    """Operator replicas run in different pods: a pid there means nothing here."""
    h = Harness(tmp_path)
    h.step()
    store = SqliteStore(tmp_path / "state.db")
    with store.transaction(fenced=False):
        store._conn.execute(
            "UPDATE controller_lease SET pid=2147483646, holder='other-pod-7-abcdef'"
        )
    b = challenger(tmp_path)
    take_over(b)  # not at once: only after a full lease duration of silence
