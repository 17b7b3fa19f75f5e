"""Issue 15's scenarios, each run on every backend (``driver``: ``local`` and ``kubernetes``).

The quickstart job (4 ranks of DDP on 2 of 3 nodes, 60 steps of 0.1 s) meets a fault — a
killed worker, a hung worker, a node labelled for reboot, a crash every run, a controller
killed mid-restart, a deletion — and the test reads what a user reads: HyperPod's status,
its Events, the pods. Faults land at a training step (``at-step``), not after a sleep, so
slow machines shift the timing but not the outcome.
"""

from __future__ import annotations

import pytest

from tests.scenarios.driver import Driver, JobView
from trainguard import constants as c

pytestmark = pytest.mark.slow

STEPS = 60
FAULT_STEP = 20
"""After the memory checkpoints of steps 10 and 20, well before the end."""


def assert_completed_after_plr(view: JobView, driver: Driver) -> None:
    """Completed through process-level restarts only, each resumed from a step."""
    status = view.status
    assert view.final() == "Completed", view
    assert status["restartCount"] >= 1
    assert status["latestFaultyPodInstanceList"]["restartType"] == "PLR"
    assert status["restartStatus"].get("fullJobRestartCount", 0) == 0
    assert "FullJobRestart" not in view.reasons()
    resumed = [r for r in status.get("resumes") or [] if r["restart"] > 0]
    # the fault's restart (the last) resumed from a checkpoint; a restart before the first
    # checkpoint (a worker failing to boot on a loaded machine) has none to resume from
    assert resumed and (resumed[-1]["step"] or 0) > 0, status.get("resumes")
    assert len(driver.seen_pods) == 2, f"a restart in place keeps its pods: {driver.seen_pods}"


def test_killed_worker_restarts_in_place_and_resumes_from_memory(driver: Driver) -> None:
    driver.submit(driver.manifest(steps=STEPS))
    driver.inject(f"kill-worker:rank=1,at-step={FAULT_STEP}")
    view = driver.wait_final()
    assert_completed_after_plr(view, driver)
    resumed = [r for r in view.status["resumes"] if r["restart"] > 0]
    assert resumed[-1]["tier"] == "memory" and resumed[-1]["step"] >= FAULT_STEP, resumed
    remediated = view.messages(c.REASON_RUNNING)
    assert any(
        m.startswith("The fault of reason WorkerCrash was remediated in") for m in remediated
    )


def test_hung_worker_is_caught_by_the_log_rule_and_blamed(driver: Driver) -> None:
    """The quickstart's JobHangingDetection rule (a loss line every 15 s) catches the hang."""
    driver.submit(driver.manifest(steps=STEPS))
    driver.inject(f"hang-worker:rank=1,at-step={FAULT_STEP}")
    view = driver.wait_final()
    assert_completed_after_plr(view, driver)
    hangs = view.messages(f"{c.REASON_LOG_HANGING_PREFIX}JobHangingDetection")
    assert hangs and "rank 1 (pod " in hangs[0] and "stopped (state T" in hangs[0], hangs
    faulty = view.status["latestFaultyPodInstanceList"]
    assert faulty["faultyRankList"] == [1], view
    assert len(faulty["faultyPodList"]) == 1 and faulty["faultyPodList"][0] in driver.seen_pods


def test_node_labelled_for_reboot_moves_the_job_to_the_spare_node(driver: Driver) -> None:
    driver.submit(driver.manifest(steps=STEPS))
    placed = driver.wait_view(lambda v: len(v.pods) == 2, timeout=60, what="two pods").pods
    node = placed[min(placed)]
    driver.label_node(node, c.LABEL_NODE_HEALTH, c.HEALTH_PENDING_REBOOT)
    driver.wait_view(
        lambda v: len(v.pods) == 2 and node not in v.pods.values(),
        timeout=60, what=f"both pods off {node}",
    )  # fmt: skip
    view = driver.wait_final()
    assert view.final() == "Completed", view
    assert any(m.startswith(f"Found unhealthy node {node}") for m in view.messages("NodeFault"))


def test_repeated_crashes_escalate_to_a_full_restart_then_fail(driver: Driver) -> None:
    policy = {"numRestartBeforeFullJobRestart": 1, "evalPeriodSeconds": 600,
              "maxFullJobRestarts": 1}  # fmt: skip
    manifest = driver.manifest(
        steps=40, script="ddp_steps.py", args=("--crash-at=3", "--crash-always"),
        restartPolicy=policy,
    )  # fmt: skip
    driver.submit(manifest)
    view = driver.wait_final()
    assert view.final() == "Failed", view
    assert "FullJobRestart" in view.reasons()
    assert view.status["restartStatus"]["fullJobRestartCount"] == 1


def test_controller_killed_mid_restart_is_replaced_and_adopts_the_job(driver: Driver) -> None:
    """Killed as soon as the fault landed, while the restart it causes runs; the replacement
    adopts the agents and finishes the job with process-level restarts only, in the same two
    pods (no pod is created again)."""
    driver.submit(driver.manifest(steps=STEPS))
    driver.inject(f"kill-worker:rank=1,at-step={FAULT_STEP}")
    driver.wait_view(
        lambda v: c.REASON_FAULT_INJECTED in v.reasons(), timeout=120, what="the fault"
    )
    driver.kill_controller()
    driver.start()
    view = driver.wait_final()
    assert_completed_after_plr(view, driver)
    assert c.REASON_WORKER_CRASH in view.reasons()


def test_deleted_job_releases_its_pods_and_node_memory(driver: Driver) -> None:
    driver.submit(driver.manifest(steps=STEPS * 4))
    driver.wait_step(FAULT_STEP)
    memory = driver.memory_files()
    assert memory is None or memory, "the job holds node-local checkpoint memory"
    driver.delete_job()
    assert not driver.job_exists()
    driver.wait_released()
