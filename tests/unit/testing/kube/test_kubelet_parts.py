"""The kubelet's and control plane's small rules: pod addresses, logs, eviction, pending pods."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from trainguard.backends.kubernetes.taints import eviction_due
from trainguard.testing.kube.containerlogs import LogNotFound, LogRegistry
from trainguard.testing.kube.nodestatus import node_status
from trainguard.testing.kube.podips import NetworkClaim, PodIPPool, node_host_ip, node_pod_cidr
from trainguard.testing.kube.processes import host_image_env
from trainguard.testing.kube.scheduler import is_pending_for

UNREACHABLE = {
    "key": "node.kubernetes.io/unreachable",
    "effect": "NoExecute",
    "timeAdded": "2026-01-01T00:00:00Z",
}
ADDED = 1767225600.0  # 2026-01-01T00:00:00Z


def test_pod_addresses_are_never_reused_while_held() -> None:
    pool = PodIPPool(3)
    first, second = pool.allocate(), pool.allocate()
    assert (first, second) == ("127.1.3.2", "127.1.3.3")
    pool.release(first)
    assert pool.allocate() == "127.1.3.4"  # round robin: a released address waits its turn
    held = {pool.allocate() for _ in range(251)}  # .5 to .254, then .2
    assert first in held and second not in held
    with pytest.raises(RuntimeError, match="no pod address left"):
        pool.allocate()
    assert (node_host_ip(0), node_pod_cidr(0)) == ("127.0.1.1", "127.1.0.0/24")
    with pytest.raises(ValueError, match="room for 255 nodes"):
        PodIPPool(255)


def test_logs_tail_and_choose_the_only_container(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    path.write_bytes(b"one\ntwo\nthree\n")
    logs = LogRegistry()
    logs.register("ns", "p", "c", path, running=lambda: False)
    assert b"".join(logs.read("ns", "p", None, None, False)) == b"one\ntwo\nthree\n"
    assert b"".join(logs.read("ns", "p", "c", 2, True)) == b"two\nthree\n"
    with pytest.raises(LogNotFound, match="container d is not valid for pod p"):
        logs.read("ns", "p", "d", None, False)
    logs.register("ns", "p", "d", path, running=lambda: False)
    with pytest.raises(LogNotFound, match=r"choose one of: \[c d\]"):
        logs.read("ns", "p", None, None, False)
    with pytest.raises(LogNotFound, match='pod "q"'):
        logs.read("ns", "q", None, None, False)


@pytest.mark.parametrize(
    ("tolerations", "now", "due"),
    [
        ([], ADDED, True),
        ([{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}], ADDED + 10**6, False),
        (
            [{"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}],
            ADDED + 29,
            False,
        ),
        (
            [{"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}],
            ADDED + 30,
            True,
        ),
        ([{"key": "other", "operator": "Exists"}], ADDED, True),
    ],
)
def test_taint_eviction_honours_toleration_seconds(
    tolerations: list[dict[str, object]], now: float, due: bool
) -> None:
    pod = {"spec": {"tolerations": tolerations}}
    assert eviction_due(pod, [UNREACHABLE], now) is due


def test_no_execute_taints_only() -> None:
    assert not eviction_due({"spec": {}}, [{**UNREACHABLE, "effect": "NoSchedule"}], ADDED)


@pytest.mark.parametrize(
    ("pod", "pending"),
    [
        ({"metadata": {}, "spec": {}}, True),
        ({"metadata": {}, "spec": {"schedulerName": "default-scheduler"}}, True),
        ({"metadata": {}, "spec": {"schedulerName": "volcano"}}, False),
        ({"metadata": {}, "spec": {"nodeName": "n"}}, False),
        ({"metadata": {"deletionTimestamp": "x"}, "spec": {}}, False),
        ({"metadata": {}, "spec": {}, "status": {"phase": "Failed"}}, False),
    ],
)
def test_which_pods_the_scheduler_owns(pod: dict[str, object], pending: bool) -> None:
    assert is_pending_for(pod) is pending  # type: ignore[arg-type]


def test_the_image_is_this_python_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin")
    monkeypatch.setenv("SECRET_OF_THE_HOST", "x")
    env = host_image_env()
    assert env["PATH"] == f"{Path(sys.executable).parent}:/usr/bin"
    assert "SECRET_OF_THE_HOST" not in env


def test_clusters_claim_distinct_networks_until_released(tmp_path: Path) -> None:
    first = NetworkClaim.claim(tmp_path)
    second = NetworkClaim.claim(tmp_path)
    assert (first.number, second.number) == (1, 2)
    assert PodIPPool(0, second.number).allocate() == "127.2.0.2"
    assert (node_host_ip(4, second.number), node_pod_cidr(4, second.number)) == (
        "127.0.2.5",
        "127.2.4.0/24",
    )
    first.release()
    third = NetworkClaim.claim(tmp_path)
    assert third.number == 1
    second.release()
    third.release()


def test_node_status_keeps_transition_times_and_reports_no_pressure() -> None:
    first = node_status({}, capacity={"pods": "110"}, host_ip="127.0.1.1", name="n", now="t1")
    later = node_status(first, capacity={"pods": "110"}, host_ip="127.0.1.1", name="n", now="t2")
    conditions = {c["type"]: c for c in later["conditions"]}
    assert set(conditions) == {"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"}
    assert conditions["Ready"]["status"] == "True"
    assert (
        conditions["Ready"]["lastHeartbeatTime"],
        conditions["Ready"]["lastTransitionTime"],
    ) == (
        "t2",
        "t1",
    )
    assert later["addresses"][0] == {"type": "InternalIP", "address": "127.0.1.1"}
