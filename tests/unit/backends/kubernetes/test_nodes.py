"""Kubernetes node faults reach the controller as the health label it already understands."""

from __future__ import annotations

from typing import Any

import pytest

from trainguard import constants as c
from trainguard.backends.kubernetes.nodes import node_record, pod_disruption
from trainguard.backends.kubernetes.store_objects import pod_record as stored
from trainguard.backends.kubernetes.terminations import to_force
from trainguard.controller.context import PodView
from trainguard.controller.detect import detect_fault
from trainguard.store.records import PodRecord

READY = {"type": "Ready", "status": "True"}
NOT_READY = {"type": "Ready", "status": "False"}
UNKNOWN = {"type": "Ready", "status": "Unknown"}
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}


def node(
    name: str = "n1",
    *,
    health: str | None = c.HEALTH_SCHEDULABLE,
    conditions: list[dict[str, str]] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name}
    if health is not None:
        labels[c.LABEL_NODE_HEALTH] = health
    spec: dict[str, Any] = {"taints": taints or []}
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"a": "b"},
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": spec,
        "status": {"conditions": [READY] if conditions is None else conditions},
    }


def health_of(obj: dict[str, Any]) -> str | None:
    return node_record(obj).labels.get(c.LABEL_NODE_HEALTH)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (node(), c.HEALTH_SCHEDULABLE),
        (node(health=None), None),
        (node(conditions=[]), c.HEALTH_SCHEDULABLE),
        (node(conditions=[NOT_READY]), c.HEALTH_PENDING_REPLACEMENT),
        (node(conditions=[UNKNOWN]), c.HEALTH_PENDING_REPLACEMENT),
        (node(health=None, conditions=[UNKNOWN]), c.HEALTH_PENDING_REPLACEMENT),
        (node(taints=[UNREACHABLE]), c.HEALTH_SCHEDULABLE),
        (node(taints=[{"key": "x", "effect": "NoSchedule"}]), c.HEALTH_SCHEDULABLE),
        (node(unschedulable=True), c.HEALTH_UNSCHEDULABLE),
        (node(health=None, unschedulable=True), c.HEALTH_UNSCHEDULABLE),
        (node(health=c.HEALTH_PENDING_REBOOT, conditions=[NOT_READY]), c.HEALTH_PENDING_REBOOT),
        (node(health=c.HEALTH_UNSCHEDULABLE, conditions=[NOT_READY]), c.HEALTH_PENDING_REPLACEMENT),
        (node(health="Custom", unschedulable=True), "Custom"),
        (node(unschedulable=True, conditions=[NOT_READY]), c.HEALTH_PENDING_REPLACEMENT),
    ],
    ids=[
        "healthy",
        "unlabelled",
        "never-reported",
        "not-ready",
        "ready-unknown",
        "unlabelled-unknown",
        "noexecute-taint-judged-per-pod",
        "noschedule-taint",
        "cordoned",
        "unlabelled-cordoned",
        "label-already-a-fault",
        "deep-check-then-lost",
        "own-unschedulable-value",
        "cordoned-and-lost",
    ],
)
def test_health_the_controller_sees(obj: dict[str, Any], expected: str | None) -> None:
    assert health_of(obj) == expected


def test_record_keeps_what_was_written_and_lists_the_faults() -> None:
    record = node_record(node(conditions=[NOT_READY], taints=[UNREACHABLE], unschedulable=True))
    assert record.name == "n1"
    assert record.annotations == {"a": "b"}
    assert record.created_at == 1767225600.0
    assert record.info == {
        "healthLabel": c.HEALTH_SCHEDULABLE,
        "faults": ["NotReady: Ready condition is False", "Cordoned: spec.unschedulable is true"],
        "ready": "False",
    }


def pod_record(node_name: str, **info: Any) -> PodRecord:
    return PodRecord(
        namespace="default",
        name=f"job-pods-0-0-{node_name}",
        job="job",
        node=node_name,
        replica_spec="pods",
        node_rank=0,
        info=info,
    )


def test_a_not_ready_node_is_a_node_fault_for_the_controller() -> None:
    nodes = {"n1": node_record(node(conditions=[NOT_READY]))}
    fault = detect_fault([PodView(pod_record("n1"), alive=True)], nodes, now=5.0)
    assert fault is not None
    assert (fault.reason, fault.nodes) == (c.REASON_NODE_FAULT, ["n1"])


def test_a_cordoned_node_keeps_its_pods() -> None:
    nodes = {"n1": node_record(node(unschedulable=True))}
    assert detect_fault([PodView(pod_record("n1"), alive=True)], nodes, now=5.0) is None


def test_a_pod_with_disruption_target_is_a_node_fault() -> None:
    disrupted = {"status": {"conditions": [{"type": "DisruptionTarget", "status": "True",
                 "reason": "EvictionByEvictionAPI", "message": "drained"}]}}  # fmt: skip
    why = pod_disruption(disrupted)
    assert why == "EvictionByEvictionAPI: drained"
    nodes = {"n1": node_record(node())}
    pod = pod_record("n1", **{c.POD_INFO_DISRUPTION: why})
    fault = detect_fault([PodView(pod, alive=True)], nodes, now=5.0)
    assert fault is not None
    assert (fault.reason, fault.replace) == (c.REASON_NODE_FAULT, [pod.name])


def test_a_disruption_condition_that_is_false_is_none() -> None:
    cleared = {"status": {"conditions": [{"type": "DisruptionTarget", "status": "False"}]}}
    assert pod_disruption(cleared) is None
    assert pod_disruption({}) is None


def pod_on(
    name: str, node_name: str | None, *, deleted_at: str | None = "2026-01-01T00:00:10Z"
) -> dict[str, Any]:
    """A pod bound to ``node_name`` whose grace period ends at ``deleted_at``."""
    meta: dict[str, Any] = {"name": name, "namespace": "ns"}
    if deleted_at is not None:
        meta |= {"deletionTimestamp": deleted_at, "deletionGracePeriodSeconds": 30}
    return {"metadata": meta, "spec": {"nodeName": node_name} if node_name else {}}


def test_only_pods_past_their_grace_on_lost_nodes_are_forced() -> None:
    forced_already = pod_on("forced-already", "dead")
    forced_already["metadata"]["deletionGracePeriodSeconds"] = 0
    pods = [
        pod_on("on-dead-due", "dead"),
        pod_on("on-dead-early", "dead", deleted_at="2026-01-01T00:00:30Z"),
        pod_on("on-live-due", "live"),
        pod_on("on-removed-due", "removed"),
        pod_on("not-deleted", "dead", deleted_at=None),
        pod_on("unscheduled", None),
        forced_already,
    ]
    nodes = {"dead": node("dead", conditions=[UNKNOWN]), "live": node("live")}
    force = to_force(pods, nodes=nodes, now=ADDED + 20)
    assert [p["metadata"]["name"] for p in force] == ["on-dead-due", "on-removed-due"]


def test_a_pod_not_scheduled_yet_is_no_node_fault() -> None:
    assert detect_fault([PodView(pod_record(""), alive=True)], {}, now=5.0) is None


def test_the_store_maps_an_evicted_pod_to_a_record_the_controller_blames() -> None:
    condition = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"}
    obj = {
        "metadata": {"name": "p-0-0", "namespace": "default", "labels": {c.LABEL_JOB: "job"}},
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running", "conditions": [condition]},
    }
    assert stored(obj).info == {c.POD_INFO_DISRUPTION: "DeletionByTaintManager"}


GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoExecute",
             "timeAdded": "2026-01-01T00:00:00Z"}  # fmt: skip
ADDED = 1767225600.0


def pod_tolerating(*tolerations: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "p-0-0",
            "namespace": "default",
            "labels": {c.LABEL_JOB: "job", c.LABEL_NODE_RANK: "0"},
        },
        "spec": {"nodeName": "n1", "tolerations": list(tolerations)},
        "status": {"phase": "Running"},
    }


@pytest.mark.parametrize(
    ("toleration", "now", "fault"),
    [
        (None, ADDED, True),
        (
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"},
            ADDED + 1e6,
            False,
        ),
        ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "present"}, ADDED, False),
        ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "absent"}, ADDED, True),
        ({"operator": "Exists", "effect": "NoSchedule"}, ADDED, True),
        ({"operator": "Exists", "tolerationSeconds": 30}, ADDED + 29, False),
        ({"operator": "Exists", "tolerationSeconds": 30}, ADDED + 30, True),
    ],
    ids=[
        "untolerated",
        "tolerated-for-ever",
        "tolerated-by-value",
        "other-value",
        "other-effect",
        "within-toleration-seconds",
        "past-toleration-seconds",
    ],
)
def test_a_no_execute_taint_is_a_fault_only_for_pods_the_taint_manager_evicts(
    toleration: dict[str, Any] | None, now: float, fault: bool
) -> None:
    tainted = node(taints=[GPU_TAINT])
    obj = pod_tolerating(*([toleration] if toleration else []))
    record = stored(obj, tainted, now=now)
    found = detect_fault([PodView(record, alive=True)], {"n1": node_record(tainted)}, now=now)
    assert (found is not None) is fault
    if fault:
        assert found is not None and found.reason == c.REASON_NODE_FAULT
        why = record.info[c.POD_INFO_DISRUPTION]
        assert why == "DeletionByTaintManager: taint nvidia.com/gpu=present:NoExecute on node n1"


def test_a_tolerated_taint_leaves_the_node_placeable() -> None:
    record = node_record(node(taints=[GPU_TAINT]))
    assert record.labels[c.LABEL_NODE_HEALTH] == c.HEALTH_SCHEDULABLE
    assert record.info["faults"] == []
