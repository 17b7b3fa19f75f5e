"""A durable save that hits a real full disk ends as a ``CheckpointFailed`` event on the job.

The chain under test: a real worker process saves to a real 256 KiB tmpfs and gets ENOSPC,
reports it over the real agent socket, the real agent counts it in ``/status``, and the
controller turns that status into ``status.checkpoint``, a Warning event and the metric
(before the fix the job ended ``Completed`` with no trace of the lost durable checkpoint).
Mounting needs privileges; where it is not permitted the test is skipped (the unit tier
covers the same report with an fsspec file system that fails with ENOSPC).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.agent.harness import SCRIPTS, agents, free_port
from tests.unit.controller.harness import BASE, Harness
from trainguard.agent.protocol import AgentState, CheckpointFailure
from trainguard.controller.state import JobPhase

pytestmark = pytest.mark.slow

CAPACITY = "256k"


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", f"size={CAPACITY}", "tmpfs", str(mount)]
    if subprocess.run(command, capture_output=True, check=False).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def real_failure(tmp_path: Path, disk: Path) -> CheckpointFailure:
    argv = ["--nproc-per-node=1", "--nnodes=1", str(SCRIPTS / "full_disk_save.py"), str(disk)]
    with agents(tmp_path, 1, argv) as (pod,):
        pod.start(0, 1, free_port())
        done = pod.wait_state(AgentState.COMPLETED, timeout=120)
        assert "DONE errors={'StorageFull': 1}" in pod.text()
    extra = done.trainguard
    assert extra is not None and extra.checkpoint_failures == 1
    assert extra.last_checkpoint_failure is not None
    return extra.last_checkpoint_failure


def test_full_durable_disk_reaches_the_job_as_checkpoint_failed(
    tmp_path: Path, full_disk: Path
) -> None:
    failure = real_failure(tmp_path / "agents", full_disk)
    assert (failure.step, failure.rank, failure.tier) == (1, 0, "durable")
    assert "no space left" in failure.message.lower()

    harness = Harness(tmp_path)
    harness.submit(BASE)
    harness.run_until(JobPhase.RUNNING)
    pod = harness.agent(1).pod
    harness.agent(1).checkpoint_failures.append(failure)
    for rank in (0, 1):
        harness.agent(rank).finish()
    harness.run_until(JobPhase.COMPLETED)
    harness.step(3)

    warnings = [e for e in harness.events() if e[1] == "CheckpointFailed"]
    assert len(warnings) == 1, harness.events()
    kind, _, message = warnings[0]
    assert kind == "Warning"
    assert message.startswith(
        f"Checkpoint save of step 1 failed on rank 0 (durable tier, pod {pod})"
    )
    assert "no space left" in message.lower()
    status = harness.status().checkpoint
    assert status is not None and status.failure_count == 1
    assert status.last_failure is not None and status.last_failure.step == 1
    assert status.last_failure.pod == pod
    registry = harness.controller.metrics.registry
    assert registry.get_sample_value("trainguard_checkpoint_save_failures_total") == 1.0
