"""Test helpers for `KubernetesStore` against the fake API server (`trainguard.testing.kube`).

`kube_server_with_crd` starts a fake API server with our CRD applied; `KubeHarness` opens
stores on it from a kubeconfig, creates Pods as the backend would (so a store can record
them), and wipes every object the store uses, so one server serves many tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from trainguard import constants as c
from trainguard.backends.kubernetes.client import KubeClient, RetryPolicy, load_config
from trainguard.backends.kubernetes.store import KubernetesStore
from trainguard.spec.crd import crd
from trainguard.store import PodRecord
from trainguard.testing.kube import KubeApiServer

CRDS = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
JOBS = (c.GROUP, c.VERSION, c.PLURAL)
WIPED = (
    JOBS,
    ("", "v1", "pods"),
    ("", "v1", "nodes"),
    ("", "v1", "events"),
    ("", "v1", "configmaps"),
    ("", "v1", "secrets"),
    ("coordination.k8s.io", "v1", "leases"),
)
"""Everything a store writes (``(group, version, resource)``)."""
FAST_RETRY = RetryPolicy(attempts=6, initial_delay=0.01, max_delay=0.05)


def kubectl(kubeconfig: Path, *args: str) -> str:
    """Run the real kubectl (on PATH or next to this interpreter) and return its output."""
    found = shutil.which("kubectl") or str(Path(sys.executable).with_name("kubectl"))
    cache = {"KUBECACHEDIR": str(kubeconfig.parent / ".kube-cache")}
    result = subprocess.run(
        [found, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
        timeout=60, check=False, env={**os.environ, **cache},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@contextmanager
def kube_server_with_crd() -> Iterator[KubeApiServer]:
    """A started fake API server serving ``HyperPodPyTorchJob``."""
    with KubeApiServer(bookmark_interval=0.5) as server:  # stopped informers end within 0.5 s
        server.api.create(server.api.registry.get(*CRDS), "", crd())
        yield server


def wipe(server: KubeApiServer) -> None:
    """Remove every object a store uses, finalizers or not (storage level: no API rules)."""
    for key in WIPED:
        items, _ = server.objects.list(key)
        for obj in items:
            meta = obj["metadata"]
            with suppress(Exception):
                server.objects.remove(key, meta.get("namespace", ""), meta["name"])
    server.faults.clear()
    server.audit.clear()


class KubeHarness:
    """Stores on a wiped fake cluster; `close` closes every store it opened."""

    def __init__(self, server: KubeApiServer, tmp_path: Path) -> None:
        self.server = server
        wipe(server)
        self.kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        self.stores: list[KubernetesStore] = []

    def client(self) -> KubeClient:
        """A client of the fake with quick retries."""
        return KubeClient(load_config(self.kubeconfig), retry=FAST_RETRY, sleep=lambda _: None)

    def open_store(self, **options: Any) -> KubernetesStore:
        """A new store (its own client and caches) on the fake."""
        store = KubernetesStore(self.client(), sync_timeout=10.0, **options)
        self.stores.append(store)
        return store

    def make_pod(self, pod: PodRecord) -> None:
        """Create the Pod ``pod`` records, as the backend would (labels, node, agent port)."""
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod.name,
                "namespace": pod.namespace,
                "labels": {c.LABEL_JOB: pod.job, c.LABEL_REPLICA_SPEC: pod.replica_spec},
            },
            "spec": {
                "restartPolicy": "Never",
                "nodeName": pod.node,
                "containers": [
                    {"name": "c", "image": "i", "ports": [{"name": "agent", "containerPort": 8080}]}
                ],
            },
        }
        pods = self.server.api.registry.get("", "v1", "pods")
        self.server.api.create(pods, pod.namespace, body)

    def close(self) -> None:
        for store in self.stores:
            store.close()
