"""examples/mtc: a HyperPod MTC script, unmodified, resumes from memory after a worker is killed.

``trainguard run examples/mtc/job.yaml``, with no flag, starts an MTC server per simulated node
(so this is also the test of the default path); the script saves through
``SageMakerTieredStorageWriter`` every 10 steps. A worker is SIGKILLed mid-run; every worker
restarts and the library's own ``SageMakerTieredStorageReader`` loads the newest complete step
from the node servers' memory.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.conftest import EXAMPLES
from tests.localcluster import Cluster

RESUMED = re.compile(r"\[rank (\d+)\] Resumed training from step (\d+)")


def pod_logs(cluster: Cluster) -> str:
    root = cluster.home / "pods"
    files = list(root.rglob("stdout.log")) if root.exists() else []
    return "\n".join(p.read_text(errors="replace") for p in files)


@pytest.mark.slow
def test_the_mtc_example_resumes_from_memory_after_a_worker_is_killed(cluster: Cluster) -> None:
    for name in ("train.py", "job.yaml"):
        shutil.copy(EXAMPLES / "mtc" / name, cluster.work / name)
    # 8 s after the first step: past the first saves (every 10 steps of >= 0.1 s), before the end
    done = cluster.cli("run", "job.yaml", "--fault", "kill-worker:rank=1,after=8", "-o", "json")
    assert done.returncode == 0, done.stderr[-3000:]
    job = json.loads(done.stdout)
    assert job["status"]["conditions"][-1]["type"] == "Completed"
    assert "ProcessLevelRestart" in [e["reason"] for e in job["events"]]
    logs = pod_logs(cluster)
    resumed = {int(rank): int(step) for rank, step in RESUMED.findall(logs)}
    assert sorted(resumed) == [0, 1], logs[-3000:]
    step = resumed[0]
    assert resumed[1] == step and step > 1 and (step - 1) % 10 == 0, resumed  # a saved step
    assert not list((cluster.home / "nodes").glob("*/mtc-server.json"))  # run stopped them
