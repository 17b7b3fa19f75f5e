"""``trainguard health-agent`` as a real process over the local cluster's store: a kernel log
line flips the node's label, ``trainguard node list`` shows it, a simulated reboot clears it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainguard import constants as c
from trainguard.backends.local.cluster import LocalCluster, LocalClusterConfig, save_config
from trainguard.cli.main import app
from trainguard.store.sqlite import SqliteStore

XID79 = "NVRM: Xid (PCI:0000:53:00): 79, pid=4242, name=python, GPU has fallen off the bus.\n"
runner = CliRunner()


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalCluster:
    home = tmp_path / "home"
    config = LocalClusterConfig(shm_root=str(tmp_path / "shm"))
    save_config(home, config)
    local = LocalCluster(SqliteStore(home / "state.db"), home, config)
    local.ensure_nodes(2, now=time.time())
    monkeypatch.setenv(c.ENV_HOME, str(home))
    return local


@pytest.fixture
def agent_process(cluster: LocalCluster, tmp_path: Path) -> Iterator[Callable[[], None]]:
    log = tmp_path / "kern.log"
    log.write_text("")
    env = {**os.environ, c.ENV_HOME: str(cluster.home)}
    command = [
        sys.executable,
        "-m",
        "trainguard",
        "health-agent",
        "--node",
        "node-1",
        "--checks",
        "KernelLog,DiskSpace",
        "--kernel-log",
        str(log),
        "--interval",
        "0.2",
        "--kernel-interval",
        "0.1",
    ]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)

    def append_xid() -> None:
        with log.open("a") as fh:
            fh.write(XID79)

    try:
        yield append_xid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def node_list() -> dict[str, dict[str, str]]:
    result = runner.invoke(app, ["node", "list", "-o", "json"])
    assert result.exit_code == 0, result.output
    return {item["name"]: item["labels"] for item in json.loads(result.stdout)["items"]}


def wait_for(predicate: Callable[[], bool], *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@pytest.mark.slow
def test_agent_flips_the_label_seen_by_node_list_and_a_reboot_clears_it(
    cluster: LocalCluster, agent_process: Callable[[], None]
) -> None:
    store = cluster.store
    wait_for(lambda: c.ANNOTATION_HEALTH_AGENT_STATUS in store.get_node("node-1").annotations)
    agent_process()
    wait_for(lambda: node_list()["node-1"][c.LABEL_NODE_HEALTH] == c.HEALTH_PENDING_REBOOT)
    labels = node_list()
    assert labels["node-1"][c.LABEL_FAULT_REASONS] == "XidHardwareFailure"
    assert labels["node-0"][c.LABEL_NODE_HEALTH] == c.HEALTH_SCHEDULABLE
    text = runner.invoke(app, ["node", "list"]).stdout
    assert "UnschedulablePend" in text and "XidHardwareFailure" in text  # may be cut to width

    cluster.reboot(store.get_node("node-1"), now=time.time())  # wipes memory and boot id
    wait_for(
        lambda: (
            json.loads(store.get_node("node-1").annotations.get(c.ANNOTATION_FAULT_DETAILS, "[]"))[
                -1
            ]["recoveredAt"]
            is not None
        )
    )
    time.sleep(1.0)  # several agent steps: the cleared fault must not come back
    assert node_list()["node-1"][c.LABEL_NODE_HEALTH] == c.HEALTH_SCHEDULABLE
    events = [e.reason for e in store.list_events(kind="Node", name="node-1")]
    assert c.REASON_HEALTH_CHECK_FAILED in events and "NodeRebooted" in events
