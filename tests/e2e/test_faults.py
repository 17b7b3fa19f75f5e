"""Every fault kind, injected for real into the quickstart job, ends Completed with nothing lost.

These are the issue's "done when" runs: `trainguard run` with ``--fault``, a killed and restarted
controller, and the escalation of repeated crashes to a full job restart and to Failed.
"""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from tests.e2e.conftest import STEPS, Cluster, Run, wait_for

pytestmark = pytest.mark.slow


def assert_learned_and_resumed(cluster: Cluster, run: Run, *, steps: int) -> None:
    """Completed, every rank reached the last step, loss fell, and restarts resumed from a step."""
    assert run.code == 0, run.stderr[-3000:]
    assert run.final_condition() == "Completed"
    losses = cluster.losses()
    assert sorted(losses) == [0, 1, 2, 3]
    for rank, by_step in losses.items():
        assert steps in by_step, f"rank {rank} never reached step {steps}"
        first = by_step[min(by_step)]
        last = sum(by_step[s] for s in range(steps - 9, steps + 1)) / 10
        assert last < 0.5 * first, f"rank {rank}: loss {first} -> {last} did not fall by half"
    resumes = [r for r in run.status.get("resumes") or [] if r["restart"] > 0]
    assert resumes, "a restart should report where it resumed from"
    assert all(r["step"] is not None and r["step"] > 0 for r in resumes), resumes


def test_killed_worker_is_restarted_in_place_and_resumes_from_memory(cluster: Cluster) -> None:
    run = cluster.run_with_fault(cluster.manifest(), "kill-worker:rank=1")
    assert_learned_and_resumed(cluster, run, steps=STEPS)
    status = run.status
    assert status["restartCount"] >= 1
    assert status["latestFaultyPodInstanceList"]["restartType"] == "PLR"
    assert status["restartStatus"].get("fullJobRestartCount", 0) == 0
    assert "FullJobRestart" not in run.reasons()
    assert any(r["tier"] == "memory" for r in status["resumes"])
    remediated = run.messages("Running")
    assert any(
        m.startswith("The fault of reason WorkerCrash was remediated in") for m in remediated
    )


def test_unhealthy_node_moves_the_job_to_a_spare_node(cluster: Cluster) -> None:
    run = cluster.run_with_fault(cluster.manifest(), "node-unhealthy")
    assert_learned_and_resumed(cluster, run, steps=STEPS)
    node_faults = run.messages("NodeFault")
    assert any(m.startswith("Found unhealthy node node-") for m in node_faults), run.reasons()


def test_hung_worker_is_detected_by_the_log_rule_and_restarted(cluster: Cluster) -> None:
    run = cluster.run_with_fault(cluster.manifest(), "hang-worker:rank=2")
    assert_learned_and_resumed(cluster, run, steps=STEPS)
    reasons = " ".join(m for e in run.job["events"] for m in (e["reason"], e["message"]))
    assert "LogStateHanging_JobHangingDetection" in reasons


def test_killed_agent_is_replaced_and_the_job_resumes(cluster: Cluster) -> None:
    run = cluster.run_with_fault(cluster.manifest(), "kill-agent:node=node-1")
    assert_learned_and_resumed(cluster, run, steps=STEPS)
    assert run.status["restartCount"] >= 1


def test_controller_killed_with_sigkill_is_restarted_and_the_job_completes(
    cluster: Cluster,
) -> None:
    manifest = cluster.manifest()
    assert cluster.cli("cluster", "up", "--nodes", "3").returncode == 0
    created = cluster.cli("job", "create", "-f", str(manifest))
    assert created.returncode == 0, created.stderr
    wait_for(lambda: cluster.min_step() >= 25, timeout=240)
    pid = cluster.controller_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")
    restarted = cluster.cli("cluster", "up", "--nodes", "3")
    assert restarted.returncode == 0, restarted.stderr
    assert cluster.controller_pid() != pid
    run = cluster.run(manifest)  # attaches to the running job and follows it to its end
    assert run.code == 0, run.stderr[-3000:]
    assert run.final_condition() == "Completed"
    assert run.status["restartCount"] == 0, "adopting live agents must not restart the job"
    assert all(STEPS in by_step for by_step in cluster.losses().values())


def test_repeated_crashes_escalate_to_full_restart_then_fail(cluster: Cluster) -> None:
    manifest = cluster.manifest(
        steps=40,
        script="ddp_steps.py",
        args=("--crash-at=3", "--crash-always"),
        restartPolicy={
            "numRestartBeforeFullJobRestart": 1,
            "evalPeriodSeconds": 600,
            "maxFullJobRestarts": 1,
        },
    )
    run = cluster.run(manifest)
    assert run.code == 1
    assert run.final_condition() == "Failed"
    assert "FullJobRestart" in run.reasons()
    assert run.status["restartStatus"]["fullJobRestartCount"] == 1
