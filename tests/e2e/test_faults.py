"""Fault runs of the local backend beyond the shared scenarios, through `trainguard run`.

The scenarios every backend runs (a killed worker, a hang, a node labelled for reboot, repeated
crashes to Failed, a controller killed mid-restart, a deletion) are in ``tests/scenarios``;
here: a hang blamed on a rank of the second node, and a killed agent, each ending Completed
with every rank at the last step and the loss halved.
"""

from __future__ import annotations

import pytest

from tests.localcluster import STEPS, Cluster, Run

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


def test_hung_worker_on_the_second_node_is_blamed_on_its_pod(cluster: Cluster) -> None:
    """Every rank goes quiet when one is stopped; the hang is blamed on the stopped one, here
    on the second node (tests/scenarios hangs rank 1, on the first, on every backend)."""
    rank = 2
    run = cluster.run_with_fault(cluster.manifest(), f"hang-worker:rank={rank}")
    assert_learned_and_resumed(cluster, run, steps=STEPS)
    pod, node = f"quickstart-pods-{rank // 2}", f"node-{rank // 2}"
    hangs = run.messages("LogStateHanging_JobHangingDetection")
    assert hangs, run.reasons()
    assert f"rank {rank} (pod {pod} on {node}): stopped (state T" in hangs[0], hangs
    faulty = run.status["latestFaultyPodInstanceList"]
    assert faulty["faultyPodList"] == [pod]
    assert faulty["faultyRankList"] == [rank]
    assert faulty["faultyInstanceIdList"] == [node]


def test_killed_agent_is_replaced_and_the_job_resumes(cluster: Cluster) -> None:
    run = cluster.run_with_fault(cluster.manifest(), "kill-agent:node=node-1")
    assert_learned_and_resumed(cluster, run, steps=STEPS)
    assert run.status["restartCount"] >= 1
