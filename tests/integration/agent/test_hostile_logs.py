"""Issue 12's log lines against a real agent: its API and worker socket stay responsive.

A worker prints ``a``*29 + ``!`` (checked against ``(a+)+$``: 38-53 s with Python's `re` here,
60-70 s in the issue) and a 150 kB tqdm ``\\r`` line (against ``.*Loss:.*``: 8-17 s here, 62 s
in the issue) every 15 steps. Before the fix the monitor loop evaluated them itself: ``/status``,
worker monitoring and the checkpoint socket froze for that long.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.agent.harness import SCRIPTS, agents, free_port
from trainguard.agent.protocol import AgentState

WORKER = str(SCRIPTS / "agent_worker.py")
RESPONSIVE_S = 2.0
RULES = [
    {"name": "Redos", "logPattern": "(a+)+$", "faultOnMatch": True},
    {"name": "Hang", "logPattern": ".*Loss:.*", "expectedRecurringFrequencyInSeconds": 3},
]


@pytest.mark.slow
def test_hostile_log_lines_neither_freeze_the_agent_nor_fake_a_hang(tmp_path: Path) -> None:
    argv = ["--nproc-per-node=1", "--nnodes=1", WORKER]
    argv += ["--steps", "60", "--step-time", "0.1", "--hostile-every", "15"]
    with agents(tmp_path, 1, argv) as (pod,):
        pod.start(0, 1, free_port(), log_monitoring_configuration=RULES)
        slowest, polls = 0.0, 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            asked = time.monotonic()
            status = pod.status()
            slowest, polls = max(slowest, time.monotonic() - asked), polls + 1
            assert status.status is AgentState.RUNNING or status.status is AgentState.COMPLETED, (
                status.reason,
                status.message,
            )
            if status.status is AgentState.COMPLETED:
                break
            time.sleep(0.1)
        assert status.status is AgentState.COMPLETED
        assert slowest < RESPONSIVE_S, f"/status took {slowest:.2f} s"
        extra = status.trainguard
        assert extra is not None
        assert extra.rules == {"Redos": "WAITING", "Hang": "HEALTHY"}
        assert extra.rule_lines_dropped == 0
        (log_file,) = pod.log_dir.rglob("stdout.log")
        lines = log_file.read_text().split("\n")
        rtts = [float(line.split()[-1]) for line in lines if line.startswith("SOCKET_RTT")]
        assert len(rtts) == 4 and max(rtts) < RESPONSIVE_S, rtts
        assert polls > 20
