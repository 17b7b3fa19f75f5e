"""Real agents report per-worker process facts, and a hang is blamed on the stopped rank.

Two agents of two torch-free workers each; every rank goes quiet after a few steps (as ranks
waiting in a collective do) and rank 2 (pod-1, local rank 0) is really stopped with SIGSTOP.
Both agents' hang rules fire; detection over their real ``/status`` answers must name pod-1,
node-1 and rank 2 — not pod-0, whose rule may well fire first.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.integration.agent.harness import SCRIPTS, agents, free_port, wait_for
from trainguard import constants as c
from trainguard.agent.protocol import AgentState
from trainguard.controller.context import PodView
from trainguard.controller.detect import detect_fault
from trainguard.store import NodeRecord, PodRecord

WORKER = str(SCRIPTS / "agent_worker.py")
RULES = [{"name": "Hang", "logPattern": "Loss: ", "expectedRecurringFrequencyInSeconds": 3}]
ARGV = ["--nproc-per-node=2", "--nnodes=2", WORKER, "--quiet-after", "20", "--socket"]


@pytest.mark.slow
def test_stopped_rank_is_reported_and_blamed(tmp_path: Path) -> None:
    with agents(tmp_path, 2, ARGV) as pods:
        port = free_port()
        for rank, pod in enumerate(pods):
            pod.start(rank, 2, port, log_monitoring_configuration=RULES)
        extra = wait_for(
            "rank 2's step report",
            lambda: (x := pods[1].status().trainguard) and x.workers and x.workers[0].step and x,
        )
        culprit_pid = extra.worker_pids[0]
        os.kill(culprit_pid, signal.SIGSTOP)
        try:
            statuses = [pod.wait_state(AgentState.FAULTED, timeout=60) for pod in pods]
            time.sleep(1.5)  # the rule fires ~3 s after the stop; facts are sampled every 0.5 s
            statuses = [pod.status() for pod in pods]
        finally:
            os.kill(culprit_pid, signal.SIGCONT)
    facts = {w.global_rank: w for s in statuses if s.trainguard for w in s.trainguard.workers}
    assert sorted(facts) == [0, 1, 2, 3]
    assert facts[2].pid == culprit_pid and facts[2].state == "T"
    assert facts[2].sampled_at - facts[2].state_since >= 1.0
    assert {facts[r].state for r in (0, 1, 3)} <= {"S", "R"}
    assert all(facts[r].step == 10 for r in facts), "each worker reported step 10 over its socket"
    assert all(facts[r].last_log_at is not None for r in facts)
    views = [
        PodView(PodRecord("default", pod.name, "j", f"node-{i}", "pods", i), True, status)
        for i, (pod, status) in enumerate(zip(pods, statuses, strict=True))
    ]
    healthy = {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}
    nodes = {f"node-{i}": NodeRecord(f"node-{i}", healthy) for i in range(2)}
    fault = detect_fault(views, nodes, now=time.time())
    assert fault is not None and fault.reason == "LogStateHanging_Hang"
    assert (fault.pods, fault.nodes, fault.ranks) == (["pod-1"], ["node-1"], [2])
    assert "rank 2 (pod pod-1 on node-1): stopped (state T" in fault.message
