"""One write per step: a step's pod rows and restart rows land with its status or not at all,
and a refused write leaves no launched pod without a row."""

from __future__ import annotations

from pathlib import Path

from tests.unit.controller.harness import Harness, manifest
from trainguard.backends.base import PodLaunch
from trainguard.controller.state import JobPhase
from trainguard.store import PodRecord, SqliteStore
from trainguard.testing import FakeBackend


class RacedBackend(FakeBackend):
    """Launches the pod, then another writer (a second store handle on the same file) changes
    the job, so the step's write meets a real version conflict."""

    def __init__(self, store: SqliteStore, other: SqliteStore) -> None:
        super().__init__(store)
        self.other, self.races = other, 1

    def create_pod(self, launch: PodLaunch, *, now: float) -> PodRecord:
        pod = super().create_pod(launch, now=now)
        if self.races:
            self.races -= 1
            record = self.other.get_job(launch.namespace, launch.job)
            record.state.phase_since += 1
            self.other.save_job(record)
        return pod


def test_a_conflict_after_launching_pods_leaves_no_untracked_pod(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.backend = RacedBackend(h.store, SqliteStore(tmp_path / "state.db"))
    h.controller = h.new_controller()
    h.submit(manifest())
    assert h.step() is JobPhase.CREATING, "the step itself went on"
    launched = list(h.backend.agents)
    assert launched and h.pods() == [], "the pod rows did not land with the refused write"
    assert h.state().phase is JobPhase.PENDING
    assert sorted(h.backend.deleted) == sorted(launched), "every launched pod was deleted"
    assert not any(h.backend.alive[name] for name in launched)
    h.run_until(JobPhase.RUNNING)
    alive = {p.name for p in h.pods() if h.backend.alive.get(p.name)}
    assert alive == {p.name for p in h.pods()} and len(alive) == len(h.pods())
