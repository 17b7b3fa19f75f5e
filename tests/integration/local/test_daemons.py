"""The local backend starts the cluster's background processes (the CLI never runs Popen).

Real processes: a controller that dies at start (its metrics port is taken) leaves only its own
lines as the log tail, not an earlier run's; health agents start one per node with pid files,
and stopping them ends every one but leaves a pid that now belongs to another program alone.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from trainguard.backends.local.cluster import LocalClusterConfig, save_config
from trainguard.backends.local.daemons import (
    CONTROLLER_LOG,
    HEALTH_AGENT_PID,
    StartedProcess,
    simulated_kernel_log,
    start_controller,
    start_health_agents,
    stop_health_agents,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    save_config(home, LocalClusterConfig(shm_root=str(tmp_path / "shm")))
    yield home
    stop_health_agents(home, timeout=5)


def _wait_exit(process: StartedProcess, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.exit_code()
        if code is not None:
            return code
        time.sleep(0.1)
    process.process.kill()
    raise AssertionError(f"controller {process.pid} still running after {timeout} s")


def test_a_controller_that_dies_at_start_shows_only_its_own_log_lines(home: Path) -> None:
    (home / CONTROLLER_LOG).write_text("an earlier controller's last words\n")
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        started = start_controller(home, metrics_port=busy.getsockname()[1])
        assert _wait_exit(started, timeout=120) != 0
    tail = "\n".join(started.log_tail(20))
    assert "address" in tail.lower()
    assert "earlier controller" not in tail
    assert "earlier controller" in (home / CONTROLLER_LOG).read_text()
    assert os.stat(home / CONTROLLER_LOG).st_mode & 0o077 == 0


def test_health_agents_run_per_node_and_stop(home: Path) -> None:
    pids = start_health_agents(home, ["node-1", "node-2"])
    assert len(pids) == 2
    for node, pid in zip(["node-1", "node-2"], pids, strict=True):
        assert simulated_kernel_log(home, node).exists()
        assert (home / "nodes" / node / HEALTH_AGENT_PID).read_text() == str(pid)
        assert "health-agent" in psutil.Process(pid).cmdline()
        assert psutil.Process(pid).ppid() == os.getpid()
    assert stop_health_agents(home) == 2
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not list((home / "nodes").glob(f"*/{HEALTH_AGENT_PID}"))


def test_stopping_health_agents_leaves_a_reused_pid_alone(home: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid_file = home / "nodes" / "node-1" / HEALTH_AGENT_PID
        pid_file.parent.mkdir(parents=True)
        pid_file.write_text(str(bystander.pid))
        assert stop_health_agents(home) == 0
        assert bystander.poll() is None
        assert not pid_file.exists()
    finally:
        bystander.kill()
        bystander.wait()
