"""The chart's MTC server pod runs: its template, scheduled on a test-cluster node, serves
HyperPod's in-memory checkpoint API on the node's address.

The fake has no DaemonSet controller, so the test does its part: one Pod from the rendered
DaemonSet's template, bound to the node. The fake kubelet then runs it as it runs every pod
(the chart's command and arguments, ``$(POD_IP)`` expanded from the downward API, the Memory
``emptyDir`` as a directory, ``hostNetwork`` giving the pod the node's address), so what is
checked is the chart's pod spec, not the server (tested in ``tests/integration/mtc``).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.helm.chart import named, render
from tests.ports import free_port
from tests.scenarios.kube import kubectl_path
from trainguard.testing.kube.cluster import TestCluster

pytestmark = pytest.mark.slow

NAMESPACE = "aws-hyperpod"


def _pod(daemonset: dict[str, Any], node: str) -> dict[str, Any]:
    """The pod the DaemonSet controller would make for ``node``."""
    template = daemonset["spec"]["template"]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"mtc-{node}", "namespace": NAMESPACE,
                     "labels": template["metadata"]["labels"]},
        "spec": {**template["spec"], "nodeName": node},
    }  # fmt: skip


def _wait_healthy(url: str, *, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url}/health never answered"
        time.sleep(0.5)


def test_the_rendered_mtc_pod_serves_the_checkpoint_api(tmp_path: Path) -> None:
    port = free_port()
    objects = render({"mtc": {"port": port, "memoryGiB": 1, "maxShardGiB": 0.5}})
    manifests = [
        named(objects, "Namespace", NAMESPACE),
        named(objects, "ServiceAccount", "tg-trainguard-mtc"),
        named(objects, "Service", "ai-toolkit-gossip-headless"),
    ]
    with TestCluster(nodes=1, workdir=tmp_path / "cluster") as cluster:
        node = next(iter(cluster.kubelets))
        manifests.append(_pod(named(objects, "DaemonSet", "tg-trainguard-mtc"), node))
        path = tmp_path / "mtc.yaml"
        path.write_text(yaml.safe_dump_all(manifests))
        done = subprocess.run(
            [kubectl_path(), "--kubeconfig", str(cluster.kubeconfig), "apply", "-f", str(path)],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "KUBECACHEDIR": str(tmp_path / ".kube-cache")},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        pod = cluster.server.objects.get(("", "v1", "pods"), NAMESPACE, f"mtc-{node}")
        deadline = time.monotonic() + 60
        while not (pod.get("status") or {}).get("podIP"):
            assert time.monotonic() < deadline, "the pod got no IP"
            time.sleep(0.2)
            pod = cluster.server.objects.get(("", "v1", "pods"), NAMESPACE, f"mtc-{node}")
        url = f"http://{pod['status']['podIP']}:{port}"
        assert pod["status"]["podIP"] == pod["status"]["hostIP"], "hostNetwork: the node's IP"
        _wait_healthy(url)
        created = httpx.post(f"{url}/v1/cp/namespaces/job?num_ranks=2&steps_retained=1")
        assert created.status_code == 200, created.text
        shape = httpx.get(f"{url}/v1/cp/namespaces/job").json()
        assert shape == {"num_ranks": 2, "steps_to_retain_per_rank": 1}
        families = text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
        limit = {f.name: f.samples[0].value for f in families if f.samples}
        assert limit["trainguard_mtc_memory_limit_bytes"] == 1 << 30, "--memory-gib from values"
