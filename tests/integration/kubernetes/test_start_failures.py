"""A job whose container command does not exist, run by the operator's pieces on the fake
cluster: it fails after its retry budget, naming the pod and the kubelet's reason.

Before, the Pod went ``Failed`` at once (``StartError``), the controller replaced it while
restarting without counting a restart, and pods were recreated in a loop while
``restartCount`` stayed at 1. The controller runs on a fake clock (the start backoff is
skipped by advancing it), against the real API server, scheduler and kubelets.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from trainguard import constants as c
from trainguard.backends.kubernetes.backend import KubernetesBackend
from trainguard.backends.kubernetes.client import PODS, KubeClient, load_config
from trainguard.backends.kubernetes.reader import InformerReader
from trainguard.backends.kubernetes.store import KubernetesStore
from trainguard.controller.deps import ControllerSettings
from trainguard.controller.loop import Controller
from trainguard.controller.state import JobPhase
from trainguard.controller.submit import submit
from trainguard.errors import ConflictError, NotFoundError
from trainguard.spec import HyperPodPyTorchJob
from trainguard.spec.crd import crd
from trainguard.store import JobRecord
from trainguard.testing import FakeClock
from trainguard.testing.kube.cluster import TestCluster

pytestmark = pytest.mark.slow
HYPERPODRUN = str(Path(sys.executable).parent / "hyperpodrun")
MISSING = "/nonexistent/bin/hyperpodrun"  # the agent itself: the container cannot start
JOB = {
    "apiVersion": c.API_VERSION,
    "kind": c.KIND,
    "metadata": {"name": "broken", "namespace": "default"},
    "spec": {
        "nprocPerNode": "1",
        "replicaSpecs": [
            {
                "name": "pods",
                "replicas": 1,
                "template": {"spec": {"containers": [{"name": "pytorch", "command": [MISSING]}]}},
            }
        ],
        "runPolicy": {"jobMaxRetryCount": 2},
    },
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(nodes=1, workdir=tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture
def client(cluster: TestCluster) -> Iterator[KubeClient]:
    """A client per test: the store closes its client with it."""
    made = KubeClient(load_config(cluster.kubeconfig))
    with contextlib.suppress(ConflictError):  # the module's first test created it
        made.create(CustomResourceDefinition, crd())
    yield made
    made.close()


def test_pods_whose_command_is_missing_fail_the_job_after_its_retries(client: KubeClient) -> None:
    record, phase, pods = _run_to_the_end(client, JOB)
    assert phase is JobPhase.FAILED, f"still {phase}; pod counter {record.state.pod_counter}"
    assert record.status.restart_count == 2
    assert record.state.pod_counter == 3, "the first pod and one replacement per restart"
    failed = record.status.conditions[-1]
    assert (failed.type, failed.reason) == ("Failed", "JobMaxRetryCountExceeded")
    assert "broken-pods-2" in failed.message and "StartError" in failed.message
    assert MISSING in failed.message
    assert len(pods) <= 1, "cleanPodPolicy All leaves at most the last, terminating pod"


def test_a_pod_whose_secret_is_missing_fails_the_job_naming_the_kubelets_reason(
    client: KubeClient,
) -> None:
    """The Pod stays Pending in ``CreateContainerConfigError``: its agent is never ready, the
    ready timeout makes it a counted fault, and the reason reaches the Failed condition."""
    job = copy.deepcopy(JOB)
    job["metadata"]["name"] = "nosecret"
    container = job["spec"]["replicaSpecs"][0]["template"]["spec"]["containers"][0]
    container["command"] = [HYPERPODRUN, "--nproc-per-node=1", "--nnodes=1", "train.py"]
    ref = {"secretKeyRef": {"name": "no-such-secret", "key": "k"}}
    container["env"] = [{"name": "FROM_SECRET", "valueFrom": ref}]
    job["spec"]["runPolicy"] = {"jobMaxRetryCount": 1}
    record, phase, _ = _run_to_the_end(client, job)
    assert phase is JobPhase.FAILED, f"still {phase}; pod counter {record.state.pod_counter}"
    failed = record.status.conditions[-1]
    assert failed.reason == "JobMaxRetryCountExceeded" and "nosecret-pods-1" in failed.message
    assert "CreateContainerConfigError" in failed.message and "no-such-secret" in failed.message


def _run_to_the_end(
    client: KubeClient, manifest: dict[str, Any]
) -> tuple[JobRecord, JobPhase | None, list[dict[str, Any]]]:
    """Run the controller's steps on a fake clock (5 s a step, past every backoff and the
    ready timeout in a few dozen steps) until the job ends or 90 s of real time pass."""
    store = KubernetesStore(client, namespace="default")
    backend = KubernetesBackend(
        client=client, reader=InformerReader(client, pods=store.pods, nodes=store.nodes)
    )
    clock = FakeClock(wall=time.time())
    controller = Controller(
        store=store,
        backend=backend,
        clock=clock,
        settings=ControllerSettings(poll_interval=0.2),
        serve_callbacks=False,
    )
    name = manifest["metadata"]["name"]
    try:
        _submit_when_served(store, clock, manifest)
        phase = None
        deadline = time.monotonic() + 90
        while phase is not JobPhase.FAILED and time.monotonic() < deadline:
            clock.advance(5.0)
            phase = controller.step().get(f"default/{name}")
            time.sleep(0.2)
        pods, _ = client.list(PODS, namespace="default", labels={c.LABEL_JOB: name})
        return store.get_job("default", name), phase, pods
    finally:
        controller.close()
        store.close()


def _submit_when_served(store: KubernetesStore, clock: FakeClock, manifest: dict[str, Any]) -> None:
    """Submit the job once the API server serves the CRD's resource."""
    job = HyperPodPyTorchJob.model_validate(manifest)
    deadline = time.monotonic() + 10
    while True:
        try:
            submit(store, job, now=clock.wall())
            return
        except NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
