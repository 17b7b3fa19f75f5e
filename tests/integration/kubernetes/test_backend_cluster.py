"""`KubernetesBackend` on the fake cluster (`TestCluster`): real API server, scheduler and
process kubelets, pods running a real agent (``hyperpodrun`` of this venv).

A pod is created for a real HyperPodPyTorchJob object (the ownerReference must point at a job
that exists, or the garbage collector removes the pod), scheduled onto a Schedulable node, runs
with its own 127.x IP, and its agent answers ``/status`` at ``http://<podIP>:8080`` with the
job's token, which the pod got from the Secret. Then: signals through the agent, graceful
deletion, a node made NotReady seen as a node fault and its pod forced out by a restarted
operator once its grace period is over, release of everything the job owns.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Pod, Secret, Service

from tests.integration.agent.harness import SCRIPTS
from trainguard import constants as c
from trainguard.backends.base import PodLaunch
from trainguard.backends.kubernetes.backend import KubernetesBackend
from trainguard.backends.kubernetes.client import JOBS, KubeClient, load_config
from trainguard.errors import BackendError, NotFoundError
from trainguard.spec.crd import crd
from trainguard.spec.k8s import PodTemplateSpec
from trainguard.store.records import PodRecord
from trainguard.testing.kube.cluster import TestCluster

T = TypeVar("T")
TOKEN = "cluster-token"
WORKER = str(SCRIPTS / "agent_worker.py")
HYPERPODRUN = str(Path(sys.executable).parent / "hyperpodrun")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(nodes=2, workdir=tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def kube(cluster: TestCluster) -> Iterator[KubeClient]:
    client = KubeClient(load_config(cluster.kubeconfig))
    client.create(CustomResourceDefinition, crd())
    yield client
    client.close()


def make_job(kube: KubeClient, name: str) -> str:
    """Create a job object (the pods' owner); returns its uid."""
    manifest = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicaSpecs": [{"name": "pods", "replicas": 1, "template": TEMPLATE}]},
    }
    deadline = time.monotonic() + 10
    while True:  # the CRD's resource is served once the server has seen the CRD
        try:
            return str(kube.create(JOBS, manifest)["metadata"]["uid"])
        except NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


TEMPLATE: dict[str, Any] = {
    "spec": {
        "containers": [
            {
                "name": "pytorch",
                "command": [HYPERPODRUN, "--nproc-per-node=1", "--nnodes=1", WORKER],
                "args": ["--steps", "0"],
                "env": [{"name": "OMP_NUM_THREADS", "value": "1"}],
            }
        ]
    }
}


def launch(job: str, uid: str, *, node: str = "node-0") -> PodLaunch:
    template = PodTemplateSpec.model_validate(TEMPLATE)
    return PodLaunch(
        namespace="default", job=job, job_uid=uid, pod=f"{job}-pods-0", node=node,
        replica_spec="pods", node_rank=0, spare=False, attempt=0,
        container=template.spec.containers[0], nproc_per_node="1", nnodes=1, token=TOKEN,
        template=template,
    )  # fmt: skip


def running_pod(kube: KubeClient, name: str) -> PodRecord:
    """The pod once it runs with an IP, as the store maps it (host = pod IP, port 8080)."""

    def probe() -> dict[str, Any] | None:
        pod = kube.get(Pod, name, namespace="default")
        status = pod.get("status") or {}
        return pod if status.get("phase") == "Running" and status.get("podIP") else None

    pod = wait_for(f"pod {name} running", probe)
    return PodRecord(
        namespace="default", name=name, job=pod["metadata"]["labels"][c.LABEL_JOB],
        node=pod["spec"]["nodeName"], replica_spec="pods", node_rank=0,
        host=pod["status"]["podIP"], port=8080,
    )  # fmt: skip


def agent_status(pod: PodRecord) -> dict[str, Any] | None:
    try:
        answer = httpx.get(
            f"{pod.url}/status", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


@pytest.mark.slow
def test_a_pod_runs_its_agent_on_its_own_ip_and_is_deleted_gracefully(
    kube: KubeClient, cluster: TestCluster
) -> None:
    uid = make_job(kube, "alpha")
    backend = KubernetesBackend(client=kube)
    created = backend.create_pod(launch("alpha", uid), now=time.time())
    assert created.name == "alpha-pods-0-0" and created.url is None
    pod = running_pod(kube, created.name)
    assert pod.host.startswith("127.") and pod.host != "127.0.0.1"
    assert pod.node in ("node-0", "node-1")
    status = wait_for("the agent's /status", lambda: agent_status(pod))
    assert status["status"] == "ready"
    assert httpx.get(f"{pod.url}/status").status_code == 401
    assert backend.pod_alive(pod)
    assert kube.get(Service, "alpha", namespace="default")["spec"]["clusterIP"] == "None"
    assert (
        kube.get(Secret, "alpha-agent-token", namespace="default")["metadata"]["ownerReferences"][
            0
        ]["uid"]
        == uid
    )

    backend.delete_pod(pod, grace=10)
    wait_for("the pod to be gone", lambda: not backend.pod_alive(pod))
    backend.release_job("default", "alpha", uid)
    with pytest.raises(NotFoundError):
        kube.get(Secret, "alpha-agent-token", namespace="default")
    backend.release_job("default", "alpha", uid)


@pytest.mark.slow
def test_signal_kills_a_real_worker_and_refuses_a_foreign_pid(kube: KubeClient) -> None:
    uid = make_job(kube, "bravo")
    backend = KubernetesBackend(client=kube)
    pod = running_pod(kube, backend.create_pod(launch("bravo", uid), now=time.time()).name)
    wait_for("the agent's /status", lambda: agent_status(pod))
    start = {"rank": 0, "nnodes": 1, "faultCount": 0, "master_addr": pod.host, "master_port": 29500}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(f"{pod.url}/start", json=start, headers=headers).status_code == 200
    extra = wait_for(
        "worker pids",
        lambda: ((agent_status(pod) or {}).get("trainguard") or {}).get("worker_pids"),
    )
    fresh = KubernetesBackend(client=kube)  # a restarted operator: token from the Secret
    with pytest.raises(BackendError, match="does not belong"):
        fresh.signal(pod, 1, signal.SIGKILL)
    fresh.signal(pod, extra[0], signal.SIGKILL)
    status = wait_for(
        "the agent to report the killed worker",
        lambda: (s := agent_status(pod)) and s["status"] == "faulted" and s,
    )
    assert [f["signal"] for f in status["trainguard"]["failures"]] == ["SIGKILL"]
    backend.release_job("default", "bravo", uid)


@pytest.mark.slow
def test_a_not_ready_node_is_a_node_fault_and_its_pod_is_forced_out(
    kube: KubeClient, cluster: TestCluster
) -> None:
    uid = make_job(kube, "charlie")
    backend = KubernetesBackend(client=kube)
    pod = running_pod(kube, backend.create_pod(launch("charlie", uid), now=time.time()).name)
    cluster.make_not_ready(pod.node)
    try:
        health = {n.name: n.labels[c.LABEL_NODE_HEALTH] for n in backend.list_nodes()}
        assert health[pod.node] == c.HEALTH_PENDING_REPLACEMENT
        backend.delete_pod(pod, grace=1)
        time.sleep(1.5)
        assert kube.get(Pod, pod.name, namespace="default")["metadata"].get("deletionTimestamp")
        restarted = KubernetesBackend(client=kube)  # the operator restarted since the delete
        restarted.step(now=time.time())
        wait_for("the forced pod to be gone", lambda: not restarted.pod_alive(pod), timeout=10)
    finally:
        cluster.make_ready(pod.node)
    wait_for(
        "the node to be healthy again",
        lambda: all(
            n.labels[c.LABEL_NODE_HEALTH] == c.HEALTH_SCHEDULABLE for n in backend.list_nodes()
        ),
    )
    backend.release_job("default", "charlie", uid)
