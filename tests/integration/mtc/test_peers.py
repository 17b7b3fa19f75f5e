"""A node's server killed with SIGKILL: every step stays readable from the other server.

Two ``trainguard checkpoint serve`` processes, each the other's peer. The ranks save through
server A (which replicates each shard to B); A is then killed for real, and the library's
reader, now reaching B, still finds the latest step and loads it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.mtc.test_dcp import run_ranks
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[3]


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server for {url} exited with {proc.returncode}"
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    servers = []
    for index, port in enumerate(ports):
        command = [
            *(sys.executable, "-m", "trainguard", "checkpoint", "serve", "--port", str(port)),
            *("--peers", urls[1 - index], "--memory-dir", str(tmp_path / f"node{index}")),
        ]
        servers.append((urls[index], subprocess.Popen(command, env=env)))
    try:
        for url, proc in servers:
            wait_healthy(url, proc)
        yield servers
    finally:
        for _, proc in servers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@pytest.mark.slow
def test_a_peer_serves_every_step_after_a_node_s_server_is_killed(
    two_servers: list[tuple[str, subprocess.Popen[bytes]]],
) -> None:
    (url_a, proc_a), (url_b, _) = two_servers
    outputs = run_ranks(url_a, "peer-job", "5,6")
    assert all("LOADED 6" in out for out in outputs), outputs
    os.kill(proc_a.pid, signal.SIGKILL)
    proc_a.wait()
    assert requests.get(f"{url_b}/v1/cp/checkpoints/peer-job/latest", timeout=10).json() == [6, 5]
    outputs = run_ranks(url_b, "peer-job", "6", "load-only")
    assert all("LOADED 6" in out for out in outputs), outputs
    metrics = requests.get(f"{url_b}/metrics", timeout=5).text
    assert "trainguard_mtc_peer_errors 0.0" not in metrics  # it did try the dead node
