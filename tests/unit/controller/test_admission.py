"""A job created straight through the API (no `submit`: no token, no ``Created``) is admitted by
its first step: valid ones run as if submitted; invalid ones fail once, naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.controller.harness import Harness, manifest
from trainguard import constants as c
from trainguard.controller.state import JobPhase
from trainguard.spec import HyperPodPyTorchJob, JobStatus
from trainguard.store import JobRecord
from trainguard.store.jobstate import JobState


def applied(h: Harness, document: dict[str, Any], *, token: str = "") -> None:
    """Store ``document`` as kubectl would leave it: the object, no conditions, and a token
    only where the store hands one out on read (the Kubernetes store's Secret)."""
    job = HyperPodPyTorchJob.model_validate(document)
    record = JobRecord(
        namespace="default", name="train", uid="u-1", job=job, manifest=document,
        status=JobStatus(), state=JobState(token=token), created_at=h.clock.wall(),
    )  # fmt: skip
    h.store.create_job(record)


def test_a_valid_job_applied_through_the_api_gets_a_token_and_runs(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    applied(h, manifest())
    h.run_until(JobPhase.RUNNING)
    assert h.state().token, "agents refuse requests without the job's token"
    created = [x for x in h.status().conditions if x.type == c.COND_CREATED]
    assert created and created[0].status == "True"
    assert ("Normal", "Created", "Job created") in h.events()


def test_a_token_the_store_handed_out_is_kept(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    applied(h, manifest(), token="from-the-secret")
    h.run_until(JobPhase.RUNNING)
    assert h.state().token == "from-the-secret"
    assert ("Normal", "Created", "Job created") in h.events()


@pytest.mark.parametrize("token", ["", "from-the-secret"])
def test_a_job_the_crd_admits_but_validate_refuses_fails_once_naming_the_field(
    tmp_path: Path, token: str
) -> None:
    document = manifest(
        logMonitoringConfiguration=[
            {"name": "Same", "logPattern": ".*Loss.*", "expectedStartCutOffInSeconds": 60},
            {"name": "Same", "logPattern": ".*Loss.*", "expectedStartCutOffInSeconds": 60},
        ]
    )
    h = Harness(tmp_path)
    applied(h, document, token=token)
    assert h.step() is JobPhase.FAILED
    failed = next(x for x in h.status().conditions if x.type == c.COND_FAILED)
    assert failed.reason == c.REASON_VALIDATION_FAILED
    assert "spec.runPolicy.logMonitoringConfiguration[1].name" in failed.message, failed.message
    warnings = [e for e in h.events() if e[1] == c.REASON_VALIDATION_FAILED]
    assert len(warnings) == 1 and warnings[0][0] == "Warning"
    assert h.pods() == [] and h.backend.agents == {}
    assert h.step(times=3) is JobPhase.FAILED
    assert len([e for e in h.events() if e[1] == c.REASON_VALIDATION_FAILED]) == 1
    h.store.request_deletion("default", "train")
    assert h.step() is None
    assert h.store.find_job("default", "train") is None
