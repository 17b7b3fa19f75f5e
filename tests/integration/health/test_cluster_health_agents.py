"""``trainguard cluster up --health-agents``: one agent process per simulated node; an Xid line
appended to a node's kernel log takes it out, the cluster's automatic recovery reboots it (new
boot id), the agent accepts the reboot, and ``cluster down`` stops the agents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.integration.health.test_health_agent_cli import wait_for
from trainguard import constants as c
from trainguard.backends.local.cluster import LocalClusterConfig, save_config
from trainguard.backends.local.daemons import simulated_kernel_log
from trainguard.store.sqlite import SqliteStore

pytestmark = pytest.mark.slow


def cli(home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = {**os.environ, c.ENV_HOME: str(home)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "trainguard", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    return run


def test_agents_take_a_faulty_node_out_and_accept_its_reboot(tmp_path: Path) -> None:
    home = tmp_path / "home"
    save_config(home, LocalClusterConfig(shm_root=str(tmp_path / "shm")))
    trainguard = cli(home)
    try:
        up = trainguard("cluster", "up", "--nodes", "2", "--health-agents", "--reboot-seconds", "1")
        assert up.returncode == 0, up.stderr
        pids = [int(p.read_text()) for p in (home / "nodes").glob("*/health-agent.pid")]
        assert len(pids) == 2
        store = SqliteStore(home / "state.db")

        def agents_wrote() -> bool:
            return all(
                c.ANNOTATION_HEALTH_AGENT_STATUS in n.annotations for n in store.list_nodes()
            )

        wait_for(agents_wrote, timeout=90)
        with simulated_kernel_log(home, "node-1").open("a") as fh:
            fh.write("NVRM: Xid (PCI:0000:53:00): 79, pid=7, GPU has fallen off the bus.\n")

        def reasons() -> list[str]:
            return [e.reason for e in store.list_events(kind="Node", name="node-1")]

        wait_for(lambda: "NodeRebooted" in reasons(), timeout=90)
        assert c.REASON_HEALTH_CHECK_FAILED in reasons()

        def recovered() -> bool:
            details = store.get_node("node-1").annotations.get(c.ANNOTATION_FAULT_DETAILS, "[]")
            return all(d["recoveredAt"] is not None for d in json.loads(details))

        wait_for(recovered, timeout=90)
        deadline = time.monotonic() + 3  # observe a few agent steps: it must stay Schedulable
        while time.monotonic() < deadline:
            assert store.get_node("node-1").labels[c.LABEL_NODE_HEALTH] == c.HEALTH_SCHEDULABLE
            time.sleep(0.2)
        assert reasons().count("NodeRebooted") == 1, "the remedied fault must not come back"
    finally:
        down = trainguard("cluster", "down", "--timeout", "30")
    assert down.returncode == 0, down.stderr
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids
    )
    assert not list((home / "nodes").glob("*/health-agent.pid"))
