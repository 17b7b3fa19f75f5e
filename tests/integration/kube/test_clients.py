"""Real clients against the fake: the kubectl binary (smoke) and lightkube (typed + generic)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lightkube import Client, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from tests.conftest import EXAMPLES
from trainguard.spec.crd import crd
from trainguard.testing.kube import KubeApiServer


def _kubectl() -> str:
    found = shutil.which("kubectl") or str(Path(sys.executable).with_name("kubectl"))
    if not Path(found).exists():
        pytest.skip("kubectl is not installed")
    return found


def test_kubectl_smoke(server: KubeApiServer, tmp_path: Path) -> None:
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    nodes = server.api.registry.get("", "v1", "nodes")
    server.api.create(nodes, "", {"metadata": {"name": "node-1"}})

    def kubectl(*args: str) -> str:
        done = subprocess.run(
            [_kubectl(), "--kubeconfig", str(kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = json.loads(kubectl("get", "nodes", "-o", "json"))
    assert [n["metadata"]["name"] for n in listed["items"]] == ["node-1"]
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: smoke\ndata:\n  a: b\n"
    )
    # --validate=false: the OpenAPI document kubectl validates with is kubefidelity's part
    kubectl("create", "--validate=false", "-f", str(manifest))
    fetched = json.loads(kubectl("get", "configmap", "smoke", "-o", "json"))
    assert fetched["data"] == {"a": "b"}
    assert fetched["metadata"]["namespace"] == "default"


@pytest.fixture
def lightkube_client(server: KubeApiServer, tmp_path: Path) -> Iterator[Client]:
    config = KubeConfig.from_file(server.write_kubeconfig(tmp_path / "kubeconfig"))
    client = Client(config=config, field_manager="test")
    yield client
    client.close()


def test_lightkube_pod_lifecycle(lightkube_client: Client) -> None:
    pod = Pod(
        metadata=ObjectMeta(name="p", labels={"HPJob": "j"}),
        spec=PodSpec(containers=[Container(name="c", image="x")]),
    )
    created = lightkube_client.create(pod)
    assert created.metadata is not None and created.metadata.uid
    assert lightkube_client.get(Pod, "p").spec.containers[0].name == "c"  # type: ignore[union-attr]
    assert [p.metadata.name for p in lightkube_client.list(Pod, labels={"HPJob": "j"})] == ["p"]  # type: ignore[union-attr]
    patched = lightkube_client.patch(
        Pod, "p", {"metadata": {"labels": {"x": "y"}}}, patch_type=PatchType.MERGE
    )
    assert patched.metadata.labels == {"HPJob": "j", "x": "y"}  # type: ignore[union-attr]
    version = created.metadata.resourceVersion
    events = lightkube_client.watch(Pod, resource_version=version, server_timeout=1)
    first_type, first_pod = next(iter(events))
    assert (first_type, first_pod.metadata.labels) == ("MODIFIED", {"HPJob": "j", "x": "y"})  # type: ignore[union-attr]


def test_lightkube_generic_resource_for_our_crd(
    server: KubeApiServer, lightkube_client: Client
) -> None:
    crds = server.api.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    server.api.create(crds, "", crd())
    job_type = create_namespaced_resource(
        "sagemaker.amazonaws.com", "v1", "HyperPodPyTorchJob", "hyperpodpytorchjobs"
    )
    manifest = yaml.safe_load((EXAMPLES / "quickstart" / "job.yaml").read_text())
    created = lightkube_client.create(job_type(manifest))
    assert created.metadata.generation == 1  # type: ignore[union-attr]
    lightkube_client.patch(
        job_type.Status, "quickstart", {"status": {"restartCount": 2}}, patch_type=PatchType.MERGE
    )
    fetched = lightkube_client.get(job_type, "quickstart")
    assert fetched.status == {"restartCount": 2}
    assert [j.metadata.name for j in lightkube_client.list(job_type)] == ["quickstart"]  # type: ignore[union-attr]
