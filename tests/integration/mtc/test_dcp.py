"""Multi-rank DCP save and load with gloo through the library's writer and reader, unmodified.

Two worker processes save three steps with ``async_save`` + ``SageMakerTieredStorageWriter``
and load with ``SageMakerTieredStorageReader`` and no step, so the reader discovers the latest
complete step from our server. The workers reach the server the way pods of the local backend
do: the library's default URL through ``http_proxy``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.integration.mtc.conftest import ServerFactory
from tests.ports import free_port

WORKER = Path(__file__).with_name("dcp_worker.py")
ROOT = Path(__file__).resolve().parents[3]


def run_ranks(
    server_url: str, namespace: str, steps: str, *extra: str, world: int = 2
) -> list[str]:
    """Run ``world`` dcp_worker.py ranks to completion; return their outputs."""
    port = str(free_port())
    procs = []
    for rank in range(world):
        env = {
            **os.environ,
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "OMP_NUM_THREADS": "1",
            "http_proxy": server_url,
            "no_proxy": "",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        }
        args = [sys.executable, str(WORKER), namespace, steps, *extra]
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True))
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=180)
            assert proc.returncode == 0, out
            outputs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return outputs


@pytest.mark.slow
def test_two_ranks_save_three_steps_and_load_the_latest(start_server: ServerFactory) -> None:
    server = start_server()
    outputs = run_ranks(server.url, "dcp-job", "10,20,30")
    assert all("LOADED 30" in out for out in outputs), outputs
    latest = requests.get(f"{server.url}/v1/cp/checkpoints/dcp-job/latest", timeout=5)
    assert latest.json() == [30, 20, 10]
    config = requests.get(f"{server.url}/v1/cp/namespaces/dcp-job", timeout=5).json()
    assert config == {"num_ranks": 3, "steps_to_retain_per_rank": 3}
