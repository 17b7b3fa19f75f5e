"""Pods that die before their agent is ready: counted as faults, backed off, then Failed.

Before, a pod lost while the job was restarting was replaced silently: pods whose command is
not found were recreated in a loop (hundreds of pods) while ``restartCount`` stayed at 1.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.controller.harness import Harness, manifest
from trainguard import constants as c
from trainguard.controller.state import JobPhase
from trainguard.policy.restart import start_backoff

FAILURE = 'container pytorch terminated: StartError (exit code 128): exec: "nosuch": not found'


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def _created(h: Harness) -> int:
    return len(h.backend.agents)


def test_pods_that_never_start_use_up_the_retry_budget_and_fail_the_job(h: Harness) -> None:
    h.backend.start_failure = FAILURE
    h.submit(manifest(jobMaxRetryCount=3, restartPolicy=None))
    for _ in range(40):
        if h.step(advance=400) is JobPhase.FAILED:
            break
    assert h.state().phase is JobPhase.FAILED, f"{_created(h)} pods created, never failed"
    status = h.status()
    assert status.restart_count == 3
    assert _created(h) == 2 * 4, "the first pods and three recreations of each rank"
    failed = status.conditions[-1]
    assert (failed.type, failed.reason) == ("Failed", "JobMaxRetryCountExceeded")
    assert "train-pods-" in failed.message and FAILURE in failed.message


def test_recreating_a_pod_that_never_started_backs_off(h: Harness) -> None:
    h.backend.start_failure = FAILURE
    h.submit(manifest())
    h.step(times=2)
    assert h.state().phase is JobPhase.RESTARTING and h.state().start_failures == 1
    assert _created(h) == 2, "the first failure waits out its backoff before recreating"
    h.step(times=int(start_backoff(1) / 0.5) - 2, advance=0.5)
    assert _created(h) == 2
    h.step(advance=1.0)
    assert _created(h) == 4
    h.step(advance=0.1)
    assert h.state().start_failures == 2 and h.status().restart_count == 2
    lost = [m for _, reason, m in h.events() if reason == c.REASON_POD_LOST]
    assert lost and FAILURE in lost[-1] and "before its agent became ready" in lost[-1]


def test_a_pod_that_starts_resets_the_backoff(h: Harness) -> None:
    h.backend.start_failure = FAILURE
    h.submit(manifest())
    h.step(times=2)
    h.backend.start_failure = None
    h.step(advance=start_backoff(1) + 1)
    h.run_until(JobPhase.RUNNING)
    assert h.state().start_failures == 0


def test_start_backoff_doubles_up_to_a_cap() -> None:
    assert [start_backoff(n) for n in (0, 1, 2, 3)] == [0.0, 10.0, 20.0, 40.0]
    assert start_backoff(30) == 300.0


def test_start_failures_escalate_to_a_full_restart_then_fail(h: Harness) -> None:
    h.backend.start_failure = FAILURE
    policy = {
        "numRestartBeforeFullJobRestart": 1,
        "evalPeriodSeconds": 3600,
        "maxFullJobRestarts": 1,
    }
    h.submit(manifest(jobMaxRetryCount=None, restartPolicy=policy))
    phases = [h.step(advance=400) for _ in range(30)]
    assert phases[-1] is JobPhase.FAILED
    assert any(reason == "FullJobRestart" for _, reason, _ in h.events())
    failed = h.status().conditions[-1]
    assert failed.reason == "MaxFullJobRestartsExceeded" and FAILURE in failed.message
    # first pods, PLR replacements, JLR pods, PLR replacements (a JLR opens a fresh window);
    # the next fault would need a second JLR
    assert _created(h) == 2 * 4
    assert [r.restart_type for r in h.record().restarts] == ["PLR", "JLR", "PLR"]


def test_a_full_restart_after_start_failures_also_waits_out_the_backoff(h: Harness) -> None:
    h.backend.start_failure = FAILURE
    policy = {
        "numRestartBeforeFullJobRestart": 1,
        "evalPeriodSeconds": 3600,
        "maxFullJobRestarts": 1,
    }
    h.submit(manifest(jobMaxRetryCount=None, restartPolicy=policy))
    h.step(times=2)  # PLR, backing off
    h.step(advance=start_backoff(1) + 1)  # replacements created
    h.step()  # they died: the second start failure escalates to a full restart
    assert h.state().phase is JobPhase.FULL_RESTARTING and h.state().start_failures == 2
    created = _created(h)
    h.step(times=int(start_backoff(2)) - 2, advance=1.0)
    assert _created(h) == created and h.pods() == [], "old pods deleted, new ones wait"
    h.step(advance=2.0)
    assert _created(h) == created + 2 and h.state().phase is JobPhase.CREATING


def test_a_replacement_that_never_gets_ready_counts_after_the_ready_timeout(h: Harness) -> None:
    """A replacement pod stuck before its agent is ready (a missing Secret on Kubernetes) was
    replaced silently at each stop timeout, forever; now it is a counted fault naming why."""
    stuck = 'container pytorch waiting: CreateContainerConfigError: secret "s" not found'
    h.submit(manifest(jobMaxRetryCount=2, restartPolicy=None))
    h.run_until(JobPhase.RUNNING)
    h.backend.stuck_start = stuck
    h.backend.kill(next(p.name for p in h.pods() if p.node_rank == 1))
    h.step()  # PodLost (the pod had been ready: no backoff): replaced at once
    assert h.status().restart_count == 1 and _created(h) == 3
    h.step(times=10, advance=20.0)  # 200 s: past the 90 s stop timeout and the 180 s ready one
    assert h.status().restart_count == 2 and _created(h) == 3, "no silent replacement"
    h.step(advance=20.0)  # past the start backoff
    assert _created(h) == 4
    lost = [m for _, reason, m in h.events() if reason == c.REASON_POD_LOST]
    assert lost[-1].startswith("Pods not ready in time: train-pods-2") and stuck in lost[-1]
    h.step(times=30, advance=20.0)
    failed = h.status().conditions[-1]
    assert (failed.type, failed.reason) == ("Failed", "JobMaxRetryCountExceeded")
    assert "train-pods-3" in failed.message and stuck in failed.message
