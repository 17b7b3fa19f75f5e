"""One job's unexpected exception fails that job, never the controller (issue 12, item 1)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.unit.controller.harness import Harness, manifest
from trainguard import constants as c
from trainguard.backends.base import PodLaunch
from trainguard.controller.state import JobPhase, JobState
from trainguard.spec import JobStatus
from trainguard.store import PodRecord
from trainguard.testing import FakeBackend


class PopenRefuses(FakeBackend):
    """Raises what ``subprocess.Popen`` raises for one job's pods, as the local backend would."""

    def __init__(self, *args: Any, job: str, error: Exception, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.job, self.error = job, error

    def create_pod(self, launch: PodLaunch, *, now: float) -> PodRecord:
        if launch.job == self.job:
            raise self.error
        return super().create_pod(launch, now=now)


def named(name: str) -> dict[str, Any]:
    document = copy.deepcopy(manifest())
    document["metadata"]["name"] = name
    return document


@pytest.mark.parametrize(
    "error",
    [ValueError("embedded null byte"), OSError(7, "Argument list too long")],
    ids=["nul-byte", "e2big"],
)
def test_a_job_that_raises_fails_alone_and_the_other_job_completes(
    tmp_path: Path, error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(tmp_path, nodes=4)
    h.backend = PopenRefuses(h.store, job="bad", error=error)
    h.controller = h.new_controller()
    h.submit(named("bad"))
    h.submit(manifest())
    with caplog.at_level(logging.ERROR):
        h.run_until(JobPhase.RUNNING)
    for rank in (0, 1):
        h.agent(rank).finish()
    h.run_until(JobPhase.COMPLETED)

    bad = h.store.get_job("default", "bad")
    assert JobState.model_validate(bad.state).phase is JobPhase.FAILED
    failed = JobStatus.model_validate(bad.status).conditions[-1]
    assert (failed.type, failed.reason) == (c.COND_FAILED, c.REASON_RECONCILE_ERROR)
    events = h.store.list_events(namespace="default", name="bad")
    warnings = [e.message for e in events if e.reason == c.REASON_RECONCILE_ERROR]
    assert warnings == [f"reconciling job default/bad raised {type(error).__name__}: {error}"]
    assert all(e.type == "Warning" for e in events if e.reason == c.REASON_RECONCILE_ERROR)
    logged = [r for r in caplog.records if "default/bad" in r.getMessage()]
    assert logged and logged[0].exc_info is not None, "the traceback goes to the log"
    assert h.store.list_pods("default", "bad") == []


def test_a_failed_job_that_keeps_raising_is_not_rewritten_every_step(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.backend = PopenRefuses(h.store, job="train", error=ValueError("embedded null byte"))
    h.controller = h.new_controller()
    h.submit(manifest())
    assert h.step() is JobPhase.FAILED
    version = h.record().version
    events = len(h.events())
    assert h.step(times=5) is JobPhase.FAILED
    assert (h.record().version, len(h.events())) == (version, events)


def test_a_stored_manifest_the_models_refuse_fails_bare(tmp_path: Path) -> None:
    """Written into the store directly, below validation: observe itself raises."""
    h = Harness(tmp_path)
    h.submit(manifest())
    with h.store.transaction():
        h.store._conn.execute(
            "UPDATE jobs SET manifest=? WHERE name='train'",
            ('{"kind": "HyperPodPyTorchJob", "spec": {"replicaSpecs": 7}}',),
        )
    assert h.step() is JobPhase.FAILED
    status = h.status()
    assert status.conditions[-1].reason == c.REASON_RECONCILE_ERROR
    assert "ValidationError" in status.conditions[-1].message
    assert len(status.conditions[-1].message) < 700


def test_a_job_the_models_refuse_is_still_deleted_with_its_pods(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`job delete` and `cluster down` must not hang on a job whose stored manifest is broken,
    and such a job, once failed, does not log a traceback every step."""
    h = Harness(tmp_path)
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    pods = [p.name for p in h.pods()]
    assert pods
    with h.store.transaction():
        h.store._conn.execute(
            "UPDATE jobs SET manifest=? WHERE name='train'",
            ('{"kind": "HyperPodPyTorchJob", "spec": {"replicaSpecs": 7}}',),
        )
    assert h.step() is JobPhase.FAILED
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert h.step(times=3) is JobPhase.FAILED
    assert not [r for r in caplog.records if r.exc_info], "a traceback every step"
    h.store.request_deletion("default", "train")
    assert h.step() is None
    assert h.store.find_job("default", "train") is None
    assert h.store.list_pods("default", "train") == []
    assert sorted(h.backend.deleted) == sorted(pods)
