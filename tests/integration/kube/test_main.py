"""``python -m trainguard.testing.kube`` in its own process: ready file, kubectl, clean stop."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from .podtools import kubectl, wait_for

pytestmark = pytest.mark.slow
SRC = Path(__file__).resolve().parents[3] / "src"


def test_runs_until_sigterm_and_leaves_no_process(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "out" / "kubeconfig"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    argv = [sys.executable, "-m", "trainguard.testing.kube", "--nodes", "2"]
    argv += ["--kubeconfig", str(kubeconfig), "--workdir", str(tmp_path / "work")]
    cluster = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert cluster.stdout is not None
        line = cluster.stdout.readline()
        assert f"kubeconfig written to {kubeconfig}" in line
        assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
        nodes = kubectl(kubeconfig, "get", "nodes", "-o", "name").split()
        assert nodes == ["node/node-0", "node/node-1"]
        kubectl(
            kubeconfig,
            "run",
            "sleeper",
            "--image=python",
            "--restart=Never",
            "--command",
            "--",
            "python",
            "-c",
            "import time; time.sleep(300)",
        )
        phase = ["get", "pod", "sleeper", "-o", "jsonpath={.status.phase}"]
        wait_for(lambda: kubectl(kubeconfig, *phase) == "Running", message="sleeper Running")
        descendants = psutil.Process(cluster.pid).children(recursive=True)
        assert descendants, "the pod's process runs under the cluster"
        cluster.send_signal(signal.SIGTERM)
        assert cluster.wait(timeout=60) == 0
        _, alive = psutil.wait_procs(descendants, timeout=5)
        assert alive == []
    finally:
        if cluster.poll() is None:
            cluster.kill()
            cluster.wait()
