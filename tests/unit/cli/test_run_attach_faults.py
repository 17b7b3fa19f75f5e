"""``trainguard run`` attached to a job that already runs still injects the faults asked for."""

from __future__ import annotations

from pathlib import Path

from tests.unit.controller.harness import manifest
from trainguard.cli.local import open_cluster
from trainguard.cli.run import _submit_or_attach
from trainguard.controller.state import JobPhase, JobState
from trainguard.controller.submit import submit
from trainguard.spec import HyperPodPyTorchJob
from trainguard.spec.faults import parse_fault
from trainguard.store.records import FaultOutcome


def test_faults_given_to_a_run_that_attaches_are_requested_not_dropped(tmp_path: Path) -> None:
    cluster = open_cluster(tmp_path / "home")
    job = HyperPodPyTorchJob.model_validate(manifest())
    record = submit(cluster.store, job, now=1.0)
    state = JobState.model_validate(record.state)
    state.phase = JobPhase.RUNNING
    record.state = state
    cluster.store.save_job(record)
    attached = _submit_or_attach(
        cluster, job, faults=[parse_fault("kill-worker:rank=1,after=0")], source_dir=str(tmp_path)
    )
    assert attached.uid == record.uid
    requests = cluster.store.list_fault_requests("default", "train")
    assert [(r.spec.render(), r.outcome) for r in requests] == [
        ("kill-worker:rank=1,after=0", FaultOutcome.PENDING)
    ]
