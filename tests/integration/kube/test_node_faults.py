"""Node faults in the fake cluster: a lost machine, its return, a removed node, a new one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from trainguard.testing.kube.cluster import TestCluster
from trainguard.testing.kube.restclient import KubeClient, nodes_path, pods_path

from .podtools import create_pod, get_pod, python_pod, wait_for, wait_phase

pytestmark = pytest.mark.slow

SLEEPER = "import time; print('up', flush=True); time.sleep(120)"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[TestCluster]:
    with TestCluster(nodes=2, workdir=tmp_path) as running:
        yield running


@pytest.fixture
def client(cluster: TestCluster) -> Iterator[KubeClient]:
    api = KubeClient(cluster.url, cluster.server.token)
    yield api
    api.close()


def _place(client: KubeClient, name: str, node: str) -> int:
    pod = python_pod(name, SLEEPER)
    pod["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    create_pod(client, pod)
    wait_phase(client, name, "Running")
    return 0


def _pid(cluster: TestCluster, node: str, name: str) -> int:
    kubelet = cluster.kubelets[node]
    box = next(b for b in kubelet.sandboxes.values() if b.pod["metadata"]["name"] == name)
    return box.processes["main"].pid


def _dead(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_lost_node_kills_processes_taints_and_evicts(
    cluster: TestCluster, client: KubeClient
) -> None:
    _place(client, "victim", "node-0")
    pid = _pid(cluster, "node-0", "victim")
    cluster.make_not_ready("node-0")
    assert _dead(pid)
    node = client.get(nodes_path("node-0")) or {}
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
    assert {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}.items() <= (
        node["spec"]["taints"][0].items()
    )

    def evicted() -> dict[str, object] | None:
        pod = get_pod(client, "victim") or {}
        conditions = pod.get("status", {}).get("conditions") or []
        marked = any(c["type"] == "DisruptionTarget" for c in conditions)
        return pod if marked and pod["metadata"].get("deletionTimestamp") else None

    pod = wait_for(evicted, message="DisruptionTarget and deletionTimestamp")
    assert pod["status"]["phase"] == "Running"  # nobody is left to report otherwise
    client.delete(pods_path("default", "victim"), grace_seconds=0)
    assert get_pod(client, "victim") is None

    # New pods avoid the tainted node; once it is back they may use it again.
    _place(client, "elsewhere", "node-1")
    cluster.make_ready("node-0")
    node = client.get(nodes_path("node-0")) or {}
    assert not node["spec"].get("taints")
    _place(client, "back", "node-0")


def test_a_removed_node_takes_its_pods_and_a_new_node_runs_new_ones(
    cluster: TestCluster, client: KubeClient
) -> None:
    _place(client, "doomed", "node-1")
    pid = _pid(cluster, "node-1", "doomed")
    cluster.remove_node("node-1")
    assert _dead(pid)
    wait_for(lambda: get_pod(client, "doomed") is None, message="pod GC of doomed")
    cluster.add_node("node-9", labels={"zone": "b"})
    pod = python_pod("fresh", "print('hi')")
    pod["spec"]["nodeSelector"] = {"zone": "b"}
    create_pod(client, pod)
    assert wait_phase(client, "fresh", "Succeeded")["spec"]["nodeName"] == "node-9"


def test_a_pod_tolerating_the_outage_is_reported_lost_when_the_node_returns(
    cluster: TestCluster, client: KubeClient
) -> None:
    pod = python_pod("patient", SLEEPER)
    pod["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "node-0"}
    pod["spec"]["tolerations"] = [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    ]
    create_pod(client, pod)
    wait_phase(client, "patient", "Running")
    pid = _pid(cluster, "node-0", "patient")
    cluster.make_not_ready("node-0")
    assert _dead(pid)

    def tainted_in_cache() -> bool:
        node = next(n for n in cluster.nodes.items() if n["metadata"]["name"] == "node-0")
        return bool(node["spec"].get("taints"))

    wait_for(tainted_in_cache, message="the taint in the controllers' cache")
    cluster.lifecycle.step()  # a pass of the taint manager that sees the taint
    assert not (get_pod(client, "patient") or {})["metadata"].get("deletionTimestamp")
    cluster.make_ready("node-0")
    failed = wait_phase(client, "patient", "Failed")
    terminated = failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("ContainerStatusUnknown", 137)
