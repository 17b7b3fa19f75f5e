"""The pure half of Kueue's integration (`backends.kubernetes.workload`): the Workload a job
gets, and what a Workload's status means for the job."""

from __future__ import annotations

import copy
from typing import Any

from tests.unit.controller.harness import BASE
from trainguard import constants as c
from trainguard.backends.kubernetes.workload import (
    admission_of,
    podset_name,
    with_condition,
    workload_manifest,
    workload_name,
)
from trainguard.spec import HyperPodPyTorchJob

GPU = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
SPOT = {"key": "spot", "operator": "Exists", "effect": "NoSchedule"}


def job(**labels: str) -> HyperPodPyTorchJob:
    document: dict[str, Any] = copy.deepcopy(BASE)
    document["metadata"] = {"name": "train", "namespace": "team-a", "labels": labels}
    group = document["spec"]["replicaSpecs"][0]
    group["name"], group["spares"] = "gpu.pods", 1
    group["template"]["metadata"] = {
        "labels": {"team": "nlp"},
        "annotations": {c.ANNOTATION_KUEUE_REQUIRED_TOPOLOGY: "topology.k8s.aws/ultraserver-id"},
    }
    second = copy.deepcopy(group)
    second["name"], second["replicas"], second["spares"] = "eval", 1, 0
    document["spec"]["replicaSpecs"].append(second)
    return HyperPodPyTorchJob.model_validate(document)


def test_the_workload_has_a_podset_per_group_counting_spares_and_the_priority() -> None:
    queued = job(**{c.LABEL_KUEUE_QUEUE: "team-a-queue", c.LABEL_KUEUE_PRIORITY: "high"})
    found = workload_manifest(queued, uid="u-1", queue="team-a-queue", priority=1000)
    assert found["apiVersion"] == "kueue.x-k8s.io/v1beta1" and found["kind"] == "Workload"
    assert found["metadata"]["namespace"] == "team-a"
    assert found["metadata"]["name"] == workload_name("train", "u-1")
    spec = found["spec"]
    assert [(p["name"], p["count"]) for p in spec["podSets"]] == [("gpu-pods", 3), ("eval", 1)]
    first = spec["podSets"][0]
    assert first["template"]["metadata"]["labels"] == {"team": "nlp"}
    assert first["topologyRequest"] == {"required": "topology.k8s.aws/ultraserver-id"}
    assert (spec["queueName"], spec["priorityClassName"], spec["priority"]) == (
        "team-a-queue", "high", 1000,
    )  # fmt: skip
    unprioritised = workload_manifest(job(), uid="u-1", queue="q", priority=None)["spec"]
    assert "priorityClassName" not in unprioritised and "priority" not in unprioritised


def test_workload_names_are_dns_names_that_change_with_the_uid() -> None:
    long = workload_name("x" * 300, "u-1")
    assert len(long) <= 253 and long.startswith(f"{c.SINGULAR}-x")
    assert workload_name("train", "u-1") != workload_name("train", "u-2")
    assert podset_name(job().spec.replica_specs[0]) == "gpu-pods"


def admitted(**status: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "admission": {
            "clusterQueue": "cq",
            "podSetAssignments": [{"name": "gpu-pods", "flavors": {"nvidia.com/gpu": "a100"}}],
        },
        "conditions": [
            {"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved"},
            {"type": "Admitted", "status": "True", "reason": "Admitted"},
        ],
    }
    return {"metadata": {"name": "wl"}, "status": {**base, **status}}


def test_admission_merges_flavor_labels_tolerations_and_podset_updates() -> None:
    flavors = {"a100": {"spec": {"nodeLabels": {"gpu": "a100"}, "tolerations": [GPU]}}}
    checks = [{"name": "prov", "podSetUpdates": [
        {"name": "gpu-pods", "nodeSelector": {"zone": "a"}, "tolerations": [SPOT, GPU]},
    ]}]  # fmt: skip
    answer = admission_of(admitted(admissionChecks=checks), flavors)
    assert answer.admitted and answer.message == "admitted by ClusterQueue cq"
    assert answer.node_selector == {"gpu": "a100", "zone": "a"}
    assert answer.tolerations == [GPU, SPOT]


def test_pending_and_evicted_workloads_hold_the_job() -> None:
    pending = {"metadata": {"name": "wl"}, "status": {"conditions": [
        {"type": "QuotaReserved", "status": "False", "reason": "Pending",
         "message": "couldn't assign flavors"},
    ]}}  # fmt: skip
    answer = admission_of(pending, {})
    assert (answer.admitted, answer.reason, answer.message) == (
        False, "Pending", "couldn't assign flavors",
    )  # fmt: skip
    fresh = admission_of({"metadata": {"name": "wl"}}, {})
    assert not fresh.admitted and "wl" in fresh.message
    evicted = admitted()
    evicted["status"]["conditions"].append(
        {"type": "Evicted", "status": "True", "reason": "Preempted", "message": "by high"}
    )
    answer = admission_of(evicted, {"a100": {"spec": {}}})
    assert (answer.admitted, answer.reason, answer.message) == (False, "Preempted", "by high")


def test_with_condition_keeps_the_transition_time_of_an_unchanged_status() -> None:
    first = with_condition([], "Finished", "True", "Succeeded", "done", now=100.0)
    again = with_condition(first, "Finished", "True", "Succeeded", "still", now=200.0)
    assert again[0]["lastTransitionTime"] == first[0]["lastTransitionTime"]
    flipped = with_condition(again, "Finished", "False", "Reset", "x", now=300.0)
    assert flipped[0]["lastTransitionTime"] != first[0]["lastTransitionTime"]
    assert len(flipped) == 1
