"""`Controller.step(only=...)` steps just the named jobs; failures are reported per job (the
operator's work queue backs those keys off)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tests.unit.controller.harness import Harness, manifest
from trainguard.backends.base import PodLaunch
from trainguard.errors import InfrastructureError
from trainguard.store import PodRecord
from trainguard.testing import FakeBackend


def named(name: str) -> dict[str, Any]:
    document = copy.deepcopy(manifest())
    document["metadata"]["name"] = name
    return document


class FailsFor(FakeBackend):
    """Pod creation for one job fails with a retryable trainguard error (an API hiccup)."""

    def __init__(self, *args: Any, job: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.job = job

    def create_pod(self, launch: PodLaunch, *, now: float) -> PodRecord:
        if launch.job == self.job:
            raise InfrastructureError("the API server answered 503")
        return super().create_pod(launch, now=now)


def test_only_the_named_jobs_are_stepped(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=4)
    h.submit(named("a"))
    h.submit(named("b"))
    phases = h.controller.step(only=["default/a"])
    assert set(phases) == {"default/a"}
    assert h.store.list_pods("default", "a")
    assert not h.store.list_pods("default", "b")
    assert set(h.controller.step()) == {"default/a", "default/b"}


def test_a_job_whose_step_raised_is_in_failed_keys_until_it_succeeds(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=4)
    h.backend = FailsFor(h.store, job="a")
    h.controller = h.new_controller()
    h.submit(named("a"))
    h.submit(named("b"))
    h.controller.step()
    assert h.controller.failed_keys == {"default/a"}
    h.backend.job = "nobody"
    h.controller.step()
    assert h.controller.failed_keys == set()
