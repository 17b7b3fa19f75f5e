"""``trainguard operator`` as a process on the fake cluster, beyond the shared scenarios: an
invalid object applied with kubectl, API errors injected into the operator's requests, a
graceful shutdown releasing the Lease.

The jobs run the torch-free ``agent_worker.py`` under ``hyperpodrun``, so they take seconds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.agent.harness import SCRIPTS
from tests.ports import free_port
from tests.scenarios.kube import TRAINGUARD, kubectl_path
from trainguard import constants as c
from trainguard.testing.kube.cluster import TestCluster
from trainguard.testing.kube.faults import DROP

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(nodes=2, workdir=tmp_path_factory.mktemp("cluster")) as running:
        kubectl(running, "apply", "-f", "-", stdin=_crd())
        yield running


def _crd() -> str:
    done = subprocess.run([TRAINGUARD, "crd"], capture_output=True, text=True, check=True)
    return done.stdout


def kubectl(cluster: TestCluster, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [kubectl_path(), "--kubeconfig", str(cluster.kubeconfig), *args],
        input=stdin, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def start_operator(cluster: TestCluster, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    command = [
        TRAINGUARD, "operator", "--kubeconfig", str(cluster.kubeconfig), "--bind", "127.0.0.1",
        "--metrics-port", "0", "--health-port", str(free_port()),
        "--callback-port", str(free_port()), "--lease-seconds", "3", *extra,
    ]  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def operator(
    cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    process = start_operator(cluster, tmp_path_factory.mktemp("operator") / "operator.log")
    yield process
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def job(name: str, *, steps: int = 20, **run_policy: Any) -> dict[str, Any]:
    worker = str(SCRIPTS / "agent_worker.py")
    command = ["hyperpodrun", "--nproc-per-node=1", "--nnodes=1", worker,
               f"--steps={steps}", "--step-time=0.05"]  # fmt: skip
    container = {"name": "pytorch", "image": "python", "command": command}
    return {
        "apiVersion": c.API_VERSION, "kind": c.KIND, "metadata": {"name": name},
        "spec": {
            "replicaSpecs": [{"name": "pods", "replicas": 1,
                              "template": {"spec": {"containers": [container]}}}],
            "runPolicy": {"jobMaxRetryCount": 3, **run_policy},
        },
    }  # fmt: skip


def get_job(cluster: TestCluster, name: str) -> dict[str, Any]:
    return dict(json.loads(kubectl(cluster, "get", "hpjob", name, "-o", "json")))


def wait_condition(cluster: TestCluster, name: str, kind: str, timeout: float = 90) -> None:
    def done(obj: dict[str, Any]) -> bool:
        conditions = (obj.get("status") or {}).get("conditions") or []
        return any(x["type"] == kind and x["status"] == "True" for x in conditions)

    wait_for(lambda: done(get_job(cluster, name)), timeout, f"{name} {kind}")


def wait_for(test: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def test_a_job_kubectl_applies_runs_to_completion_with_hyperpods_events(
    cluster: TestCluster, operator: subprocess.Popen[bytes]
) -> None:
    del operator
    kubectl(cluster, "apply", "-f", "-", stdin=yaml.safe_dump(job("plain")))
    wait_condition(cluster, "plain", "Completed")
    described = kubectl(cluster, "describe", "hpjob", "plain")
    assert "Events:" in described and "CreatedPods" in described, described[-2000:]
    assert "hyperpod-pytorch-job-controller" in described


def test_an_invalid_job_fails_once_with_an_event_naming_the_field(
    cluster: TestCluster, operator: subprocess.Popen[bytes]
) -> None:
    del operator
    bad = job("bad", logMonitoringConfiguration=[
        {"name": "Start", "logPattern": "Step: (", "expectedStartCutOffInSeconds": 60},
    ])  # fmt: skip
    kubectl(cluster, "apply", "-f", "-", stdin=yaml.safe_dump(bad))
    wait_condition(cluster, "bad", "Failed", timeout=30)
    failed = next(x for x in get_job(cluster, "bad")["status"]["conditions"]
                  if x["type"] == "Failed")  # fmt: skip
    assert failed["reason"] == c.REASON_VALIDATION_FAILED
    assert "spec.runPolicy.logMonitoringConfiguration[0].logPattern" in failed["message"]
    events = kubectl(cluster, "get", "events", "--field-selector", "involvedObject.name=bad")
    assert c.REASON_VALIDATION_FAILED in events
    assert kubectl(cluster, "get", "pods", "-l", f"{c.LABEL_JOB}=bad", "-o", "name") == ""


def test_api_errors_are_retried_and_the_job_completes(
    cluster: TestCluster, operator: subprocess.Popen[bytes]
) -> None:
    faults = cluster.server.faults
    faults.inject(verb="create", resource="pods", status=500, times=2)
    faults.inject(verb="update", resource="hyperpodpytorchjobs/status", status=409, times=2)
    faults.inject(verb="update", resource="hyperpodpytorchjobs/status", status=429, times=2)
    faults.inject(verb="patch", resource="hyperpodpytorchjobs", status=503, times=1)
    faults.inject(verb="get", resource="pods", status=DROP, times=2)
    faults.inject(verb="watch", resource="pods", status=410, times=1)
    kubectl(cluster, "apply", "-f", "-", stdin=yaml.safe_dump(job("flaky")))
    wait_condition(cluster, "flaky", "Completed")
    assert operator.poll() is None, "the operator survived every error"
    pods = {e.resource for e in cluster.server.audit if e.verb == "create"}
    assert "pods" in pods


def test_graceful_shutdown_releases_the_lease(cluster: TestCluster, tmp_path: Path) -> None:
    """SIGTERM: the operator finishes its step, releases the Lease (no holder) and exits 0.
    It leads a namespace of its own, beside the module's operator."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "quiet"}}
    kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(namespace))
    process = start_operator(
        cluster, tmp_path / "operator.log", "--namespace", "quiet", "--lease-namespace", "quiet"
    )

    def holder() -> str:
        lease = kubectl(cluster, "get", "lease", c.CONTROLLER_LEASE, "-n", "quiet",
                        "--ignore-not-found", "-o", "json")  # fmt: skip
        return str(json.loads(lease)["spec"].get("holderIdentity") or "") if lease else ""

    wait_for(lambda: bool(holder()), 60, "the operator to lead")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, (tmp_path / "operator.log").read_text()[-3000:]
    assert holder() == ""
