"""The issue's "done when": two real agents, 2 gloo DDP workers each, driven only over HTTP;
workers forked by the agents' zygotes (the default path)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.integration.agent.harness import SCRIPTS, agents, free_port, wait_for
from trainguard.agent.protocol import AgentState, StopRequest


def _training(agent: object, rank: int, after: int = 0) -> bool:
    lines = agent.client.logs(rank=rank, tail=5)  # type: ignore[attr-defined]
    steps = [int(line.split("Step: ")[1].split()[0]) for line in lines if "Step: " in line]
    return bool(steps) and max(steps) > after


@pytest.mark.slow
def test_crash_stop_and_restart_of_two_ddp_agents(tmp_path: Path) -> None:
    argv = ["--nproc-per-node=2", "--nnodes=2", str(SCRIPTS / "ddp_steps.py")]
    argv += ["--steps", "100000", "--step-time", "0.1"]
    with agents(tmp_path, 2, argv, env={"TRAINGUARD_COLD_START": "0"}) as pods:  # the zygote
        port = free_port()
        for rank, pod in enumerate(pods):
            pod.start(rank, 2, port)
            assert pod.status().status is AgentState.RUNNING
        for rank in range(4):
            wait_for(f"rank {rank} to train", lambda r=rank: _training(pods[r // 2], r), 120)
        assert "[rank 3] Step:" in pods[1].client.logs(rank=3, tail=1)[0]

        victim = pods[1].status().trainguard.worker_pids[1]  # type: ignore[union-attr]
        os.kill(victim, signal.SIGKILL)
        faulted = pods[1].wait_state(AgentState.FAULTED, timeout=10)
        extra = faulted.trainguard
        assert extra is not None and extra.detected_at is not None
        assert faulted.reason == "WorkerCrash"
        root = extra.failures[0]
        assert (root.local_rank, root.global_rank, root.exitcode) == (1, 3, -9)
        assert root.signal == "SIGKILL"
        assert "Local Rank 1 exited with code -9" in (faulted.message or "")

        old_pids = [p for pod in pods for p in pod.status().trainguard.worker_pids]  # type: ignore[union-attr]
        for pod in pods:
            pod.client.stop(StopRequest(restart_mode="process_level_restart"))
        for pod in pods:
            assert pod.wait_state(AgentState.READY, timeout=30).trainguard.worker_pids == []  # type: ignore[union-attr]
        assert not [p for p in old_pids if psutil.pid_exists(p)]

        port = free_port()
        for rank, pod in enumerate(pods):
            pod.start(rank, 2, port, faultCount=1)
        for rank in range(4):
            wait_for(f"rank {rank} to train again", lambda r=rank: _training(pods[r // 2], r), 120)
        for pod in pods:
            status = pod.status()
            assert status.status is AgentState.RUNNING
            assert status.trainguard is not None and status.trainguard.fault_count == 1
        for pod in pods:
            pod.client.shutdown()
        for pod in pods:
            assert pod.proc.wait(timeout=60) == 0
