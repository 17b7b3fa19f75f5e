"""The fake cluster runs pods as processes: env, logs, exit codes, pod IPs, graceful deletion.

One cluster serves the whole module (starting one takes a moment); every test uses its own pod.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from trainguard.testing.kube import DROP
from trainguard.testing.kube.cluster import TestCluster
from trainguard.testing.kube.restclient import KubeClient, pods_path

from .podtools import create_pod, get_pod, kubectl, python_pod, wait_for, wait_phase

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(nodes=2, workdir=tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture
def client(cluster: TestCluster) -> Iterator[KubeClient]:
    api = KubeClient(cluster.url, cluster.server.token)
    yield api
    api.close()


PRINT_ENV = (
    "import json, os; print(json.dumps({'ip': os.environ['POD_IP'], "
    "'token': os.environ['TOKEN'], 'cwd': os.getcwd(), 'name': os.environ['NAME']}))"
)


def test_a_pod_sees_its_env_and_its_log_is_served(
    cluster: TestCluster, client: KubeClient, tmp_path: Path
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "env-secret", "namespace": "default"},
        "data": {"token": base64.b64encode(b"t0ken").decode()},
    }
    client.request("POST", "/api/v1/namespaces/default/secrets", body=secret)
    pod = python_pod(
        "env-pod",
        PRINT_ENV,
        workingDir=str(tmp_path),
        env=[
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "token"}},
            },
        ],
    )
    create_pod(client, pod)
    done = wait_phase(client, "env-pod", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded"
    state = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (state["exitCode"], state["reason"]) == (0, "Completed")
    pod_ip = done["status"]["podIP"]
    # the cluster's own network: parallel test workers each claim another one
    assert pod_ip.startswith(f"127.{cluster.network}.")
    assert done["status"]["hostIP"].startswith(f"127.0.{cluster.network}.")
    expected = {"ip": pod_ip, "token": "t0ken", "cwd": str(tmp_path), "name": "env-pod"}
    api_log = client._http.get(pods_path("default", "env-pod", "log"))
    assert api_log.status_code == 200
    assert json.loads(api_log.text) == expected
    assert json.loads(kubectl(cluster.kubeconfig, "logs", "env-pod")) == expected
    events = client.request("GET", "/api/v1/namespaces/default/events")["items"]
    story = [
        (e["reason"], e["source"]["component"], e["message"])
        for e in events
        if e["involvedObject"]["name"] == "env-pod"
    ]
    node = done["spec"]["nodeName"]
    assert (
        "Scheduled",
        "default-scheduler",
        f"Successfully assigned default/env-pod to {node}",
    ) in story
    assert ("Started", "kubelet", "Started container main") in story


def test_a_failing_container_fails_the_pod_with_its_exit_code(client: KubeClient) -> None:
    pod = python_pod("fails", "import sys; sys.exit(7)")
    pod["spec"]["hostNetwork"] = True
    create_pod(client, pod)
    done = wait_phase(client, "fails", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Failed"
    assert done["status"]["podIP"] == done["status"]["hostIP"]  # hostNetwork: the node's address
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (7, "Error")


def test_a_missing_secret_is_create_container_config_error(client: KubeClient) -> None:
    env = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]
    create_pod(client, python_pod("no-secret", "print(1)", env=env))

    def waiting() -> dict[str, str] | None:
        pod = get_pod(client, "no-secret") or {}
        statuses = pod.get("status", {}).get("containerStatuses") or [{}]
        return statuses[0].get("state", {}).get("waiting")

    state = wait_for(waiting, message="the container waiting")
    assert state == {"reason": "CreateContainerConfigError", "message": 'secret "absent" not found'}
    assert (get_pod(client, "no-secret") or {})["status"]["phase"] == "Pending"


def _wait_running_pid(client: KubeClient, cluster: TestCluster, name: str) -> int:
    wait_phase(client, name, "Running")
    sandbox = next(
        box
        for k in cluster.kubelets.values()
        for box in k.sandboxes.values()
        if box.pod["metadata"]["name"] == name
    )
    log = sandbox.log_path("main")
    wait_for(lambda: log.exists() and "up" in log.read_text(), message=f"{name} up")
    return sandbox.processes["main"].pid


HANDLES_TERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
    "print('up', flush=True)\n"
    "time.sleep(120)\n"
)
IGNORES_TERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('up', flush=True)\n"
    "time.sleep(120)\n"
)


def test_graceful_deletion_when_sigterm_is_handled(
    cluster: TestCluster, client: KubeClient
) -> None:
    memory = {"name": "trainguard-memory", "mountPath": "/var/run/trainguard/memory"}
    pod = python_pod("polite", HANDLES_TERM, volumeMounts=[memory])
    pod["spec"]["volumes"] = [{"name": "trainguard-memory", "emptyDir": {"medium": "Memory"}}]
    create_pod(client, pod)
    pid = _wait_running_pid(client, cluster, "polite")
    volume = next(
        box.pod_dir / "volumes" / "trainguard-memory"
        for k in cluster.kubelets.values()
        for box in k.sandboxes.values()
        if box.pod["metadata"]["name"] == "polite"
    )
    assert volume.is_dir()
    # The real kubectl waits (a WatchList) until the kubelet has finished the deletion; well
    # inside the 120 s grace period, since the process left on SIGTERM.
    out = kubectl(cluster.kubeconfig, "delete", "pod", "polite", "--grace-period=120", timeout=60)
    assert 'pod "polite" deleted' in out
    assert get_pod(client, "polite") is None
    assert not volume.exists()  # the pod's node-local memory is released with it
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_graceful_deletion_kills_after_the_grace_period(
    cluster: TestCluster, client: KubeClient
) -> None:
    create_pod(client, python_pod("stubborn", IGNORES_TERM))
    pid = _wait_running_pid(client, cluster, "stubborn")
    client.delete(pods_path("default", "stubborn"), grace_seconds=2)
    assert get_pod(client, "stubborn") is not None  # Terminating while the grace period runs
    wait_for(lambda: get_pod(client, "stubborn") is None, timeout=30, message="stubborn gone")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


SERVE_NAME = (
    "import http.server, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = os.environ['NAME'].encode()\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
    "print('up', flush=True)\n"
    "http.server.HTTPServer((os.environ['POD_IP'], 8080), H).serve_forever()\n"
)


def test_each_pod_listens_on_its_own_ip(cluster: TestCluster, client: KubeClient) -> None:
    env = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    names = ["web-a", "web-b"]
    for name in names:
        create_pod(client, python_pod(name, SERVE_NAME, env=env))
    for name in names:
        _wait_running_pid(client, cluster, name)
    ips = {name: (get_pod(client, name) or {})["status"]["podIP"] for name in names}
    assert len(set(ips.values())) == 2
    for name, ip in ips.items():
        assert httpx.get(f"http://{ip}:8080/", timeout=5).text == name
    for name in names:
        client.delete(pods_path("default", name), grace_seconds=0)


def test_an_unschedulable_pod_says_why_and_is_retried(
    cluster: TestCluster, client: KubeClient
) -> None:
    pod = python_pod("picky", "print('placed')")
    pod["spec"]["nodeSelector"] = {"zone": "moon"}
    create_pod(client, pod)

    def scheduled_condition() -> dict[str, str] | None:
        conditions = (get_pod(client, "picky") or {}).get("status", {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "PodScheduled"), None)

    condition = wait_for(scheduled_condition, message="PodScheduled condition")
    assert (condition["status"], condition["reason"]) == ("False", "Unschedulable")
    assert condition["message"] == (
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    )
    kubectl(cluster.kubeconfig, "label", "node", "node-1", "zone=moon")
    done = wait_phase(client, "picky", "Succeeded")
    assert done["spec"]["nodeName"] == "node-1"


def test_kubectl_logs_follows_until_the_container_ends(
    cluster: TestCluster, client: KubeClient
) -> None:
    script = "import time; print('a', flush=True); time.sleep(1.5); print('b', flush=True)"
    create_pod(client, python_pod("talker", script))
    wait_phase(client, "talker", "Running", "Succeeded")
    assert kubectl(cluster.kubeconfig, "logs", "-f", "talker") == "a\nb\n"
    assert kubectl(cluster.kubeconfig, "logs", "--tail=1", "talker") == "b\n"


def test_api_errors_and_dropped_watches_are_retried(
    cluster: TestCluster, client: KubeClient
) -> None:
    faults = cluster.server.faults
    faults.inject(verb="create", resource="pods/binding", status=500, times=2)
    faults.inject(verb="update", resource="pods/status", status=409, times=2)
    faults.inject(verb="update", resource="pods/status", status=503, times=2)
    faults.inject(verb="watch", resource="pods", status=DROP, times=1)
    create_pod(client, python_pod("bumpy", "print('made it')"))
    done = wait_phase(client, "bumpy", "Succeeded", timeout=60)
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    faults.clear()


def test_an_empty_dir_goes_with_its_pod(cluster: TestCluster, client: KubeClient) -> None:
    """A kubelet tears a pod's emptyDir down when the pod is deleted (node-local checkpoint
    memory is one: deleting the pod must free it); the pod's log stays readable."""
    pod = python_pod(
        "scratch",
        "import os, time; open(os.environ['SCRATCH'] + '/data', 'w').write('x'); time.sleep(120)",
        env=[{"name": "SCRATCH", "value": "/scratch"}],
        volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
    )
    pod["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {"medium": "Memory"}}]
    uid = create_pod(client, pod)["metadata"]["uid"]
    pod_dirs = cluster.workdir / "nodes"
    pattern = f"*/default_scratch_{uid}"

    def written() -> bool:
        return any(pod_dirs.glob(f"{pattern}/volumes/scratch/data"))

    wait_for(written, timeout=30, message="the pod wrote into its emptyDir")
    client.delete(pods_path("default", "scratch"), grace_seconds=0)
    wait_for(lambda: get_pod(client, "scratch") is None, timeout=30, message="scratch gone")
    # deleted at once (grace 0): the kubelet stops the orphaned processes, then frees volumes
    wait_for(lambda: not any(pod_dirs.glob(f"{pattern}/volumes")), message="emptyDir removed")
    assert any(pod_dirs.glob(f"{pattern}/logs"))
