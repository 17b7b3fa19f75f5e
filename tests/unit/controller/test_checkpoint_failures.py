"""Failed checkpoint saves the agents report become status, one event per report, a metric."""

from __future__ import annotations

from pathlib import Path

from tests.unit.controller.harness import BASE, Harness
from trainguard.agent.protocol import CheckpointFailure
from trainguard.controller.state import JobPhase

METRIC = "trainguard_checkpoint_save_failures_total"


def failure(step: int, rank: int, message: str = "no space left on device") -> CheckpointFailure:
    return CheckpointFailure(step=step, rank=rank, message=message, time=1_700_000_000.0)


def warnings(harness: Harness) -> list[str]:
    return [m for _, reason, m in harness.events() if reason == "CheckpointFailed"]


def test_reports_are_counted_once_and_accumulate(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.submit(BASE)
    harness.run_until(JobPhase.RUNNING)
    harness.agent(0).checkpoint_failures.append(failure(20, 0))
    harness.step(3)
    assert len(warnings(harness)) == 1
    harness.agent(1).checkpoint_failures += [failure(40, 2), failure(60, 3, "quota")]
    harness.step(2)
    latest = warnings(harness)
    assert len(latest) == 2
    assert latest[-1].startswith("Checkpoint save of step 60 failed on rank 3 (durable tier")
    assert latest[-1].endswith("quota (2 failed saves since the last report)")
    status = harness.status().checkpoint
    assert status is not None and status.failure_count == 3
    assert status.last_failure is not None
    assert (status.last_failure.step, status.last_failure.rank) == (60, 3)
    assert status.last_failure.time == "2023-11-14T22:13:20Z"
    registry = harness.controller.metrics.registry
    assert registry.get_sample_value(METRIC) == 3.0
    assert harness.state().phase is JobPhase.RUNNING, "a failed save never fails the job"


def test_a_new_agent_process_of_the_same_pod_is_counted_afresh(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.submit(BASE)
    harness.run_until(JobPhase.RUNNING)
    agent = harness.agent(0)
    agent.checkpoint_failures.append(failure(20, 0))
    harness.step()
    agent.pid += 1000  # the agent restarted: its count starts again at 1
    agent.checkpoint_failures[:] = [failure(40, 0)]
    harness.step()
    assert len(warnings(harness)) == 2
    status = harness.status().checkpoint
    assert status is not None and status.failure_count == 2
