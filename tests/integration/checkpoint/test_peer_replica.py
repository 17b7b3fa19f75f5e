"""Two real agents with the replication extension: a node's memory is lost, the peer's replica
restores it (issue 4, phase 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.integration.agent.harness import AgentProcess, agents, free_port, wait_for
from trainguard import constants as c
from trainguard.agent.protocol import AgentState, StopRequest

from .conftest import WORKER

pytestmark = pytest.mark.slow
JOB = "peerjob"


def start_all(pods: list[AgentProcess], fault_count: int) -> None:
    peers = [{"rank": rank, "url": pod.url} for rank, pod in enumerate(pods)]
    port = free_port()
    for rank, pod in enumerate(pods):
        pod.start(
            rank, len(pods), port, faultCount=fault_count, trainguard={"job": JOB, "peers": peers}
        )


def result_line(pod: AgentProcess, rank: int) -> dict[str, Any] | None:
    for line in pod.client.logs(rank=rank, tail=20):
        text = line.split("]", 1)[-1].strip() if line.startswith("[") else line.strip()
        if text.startswith("{"):
            parsed: dict[str, Any] = json.loads(text)
            return parsed
    return None


def test_lost_memory_is_restored_from_the_peer_replica(tmp_path: Path) -> None:
    out = tmp_path / "expected"
    out.mkdir()
    argv = ["--nproc-per-node=1", "--nnodes=2", str(WORKER), "resume", "--steps", "3"]
    argv += ["--durable-every", "0", "--out", str(out)]
    # The replication extension is loaded through its entry point (pyproject.toml).
    env = {c.ENV_JOB_NAME: JOB}
    with agents(tmp_path, 2, argv, env=env) as pods:
        start_all(pods, 0)
        for pod in pods:
            pod.wait_state(AgentState.COMPLETED, timeout=180)
        replica = pods[1].dir / "shm" / ".replicas" / JOB / "rank_0" / "step_3.json"
        assert replica.exists(), pods[1].text()
        assert (pods[0].dir / "shm" / ".replicas" / JOB / "rank_1" / "step_3.json").exists()

        shutil.rmtree(pods[0].dir / "shm" / JOB / "rank_0")  # node 0 lost its memory
        for pod in pods:
            pod.client.stop(StopRequest(restart_mode="process_level_restart"))
        for pod in pods:
            pod.wait_state(AgentState.READY, timeout=60)
        start_all(pods, 1)
        results = [
            wait_for(f"rank {rank} to report", lambda r=rank: result_line(pods[r], r), 180)
            for rank in range(2)
        ]
    assert (results[0]["step"], results[0]["tier"]) == (3, "peer")
    assert (results[1]["step"], results[1]["tier"]) == (3, "memory")
    for rank, result in enumerate(results):
        expected = json.loads((out / f"expected_{rank}_3.json").read_text())
        assert result["digest"] == expected
