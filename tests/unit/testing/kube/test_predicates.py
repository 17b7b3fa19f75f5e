"""The fake scheduler's filters, table by table, against kube-scheduler's documented rules."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from trainguard.backends.kubernetes.taints import tolerates
from trainguard.testing.kube.predicates import (
    choose_node,
    filter_node,
    matches_node_affinity,
    pod_requests,
    unschedulable_message,
)
from trainguard.testing.kube.quantity import parse_quantity


def node(
    name: str,
    labels: dict[str, str] | None = None,
    *,
    taints: list[dict[str, Any]] | None = None,
    ready: bool = True,
    unschedulable: bool = False,
    allocatable: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}],
            "allocatable": allocatable or {"pods": "110", "cpu": "4", "memory": "8Gi"},
        },
    }


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [], **spec}}


def affinity(*terms: dict[str, Any]) -> dict[str, Any]:
    required = {"nodeSelectorTerms": list(terms)}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": operator, "values": list(values)}


TAINT = {"key": "k", "value": "v", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, True),
        ({"key": "k", "value": "v"}, True),  # Equal is the default; empty effect matches all
        ({"key": "k", "value": "other"}, False),
        ({"key": "k", "operator": "Exists"}, True),
        ({"key": "other", "operator": "Exists"}, False),
        ({"operator": "Exists"}, True),  # empty key with Exists tolerates everything
        ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "k", "operator": "Bogus", "value": "v"}, False),
    ],
)
def test_tolerations(toleration: dict[str, Any], expected: bool) -> None:
    assert tolerates(toleration, TAINT) is expected


LABELS = {"zone": "a", "gpus": "8", "health": "Schedulable"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, True),
        ({"nodeSelector": {"zone": "a"}}, True),
        ({"nodeSelector": {"zone": "b"}}, False),
        ({"affinity": affinity({"matchExpressions": [expr("zone", "In", "a", "b")]})}, True),
        ({"affinity": affinity({"matchExpressions": [expr("zone", "NotIn", "a")]})}, False),
        ({"affinity": affinity({"matchExpressions": [expr("absent", "NotIn", "a")]})}, True),
        ({"affinity": affinity({"matchExpressions": [expr("zone", "Exists")]})}, True),
        ({"affinity": affinity({"matchExpressions": [expr("zone", "DoesNotExist")]})}, False),
        ({"affinity": affinity({"matchExpressions": [expr("gpus", "Gt", "4")]})}, True),
        ({"affinity": affinity({"matchExpressions": [expr("gpus", "Lt", "4")]})}, False),
        ({"affinity": affinity({"matchExpressions": [expr("zone", "Gt", "4")]})}, False),
        # expressions within a term are AND'ed
        (
            {
                "affinity": affinity(
                    {"matchExpressions": [expr("zone", "In", "a"), expr("health", "In", "Bad")]}
                )
            },
            False,
        ),
        # terms are OR'ed
        (
            {
                "affinity": affinity(
                    {"matchExpressions": [expr("zone", "In", "b")]},
                    {"matchExpressions": [expr("health", "In", "Schedulable")]},
                )
            },
            True,
        ),
        ({"affinity": affinity({"matchFields": [expr("metadata.name", "In", "n1")]})}, True),
        ({"affinity": affinity({"matchFields": [expr("metadata.name", "NotIn", "n1")]})}, False),
        ({"affinity": affinity({})}, False),  # an empty term matches no node
        ({"affinity": affinity()}, False),
        # nodeSelector and affinity must both hold
        (
            {
                "nodeSelector": {"zone": "b"},
                "affinity": affinity({"matchExpressions": [expr("zone", "In", "a")]}),
            },
            False,
        ),
    ],
)
def test_node_selector_and_affinity(spec: dict[str, Any], expected: bool) -> None:
    assert matches_node_affinity(pod(**spec), node("n1", LABELS)) is expected


UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}


@pytest.mark.parametrize(
    ("the_node", "spec", "reasons"),
    [
        (node("n"), {}, []),
        (node("n", unschedulable=True), {}, ["node(s) were unschedulable"]),
        (
            node("n", unschedulable=True),
            {"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]},
            [],
        ),
        (node("n", taints=[TAINT]), {}, ["node(s) had untolerated taint {k: v}"]),
        (node("n", taints=[{**TAINT, "effect": "PreferNoSchedule"}]), {}, []),
        (
            node("n", taints=[UNREACHABLE], ready=False),
            {},
            ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"],
        ),
        (
            node("n", ready=False),
            {},
            ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"],
        ),
        (
            node("n"),
            {"tolerations": [{"operator": "Exists"}], "nodeSelector": {"x": "y"}},
            ["node(s) didn't match Pod's node affinity/selector"],
        ),
        (
            node("n", allocatable={"pods": "0", "cpu": "1"}),
            {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "1"}}}]},
            ["Too many pods", "Insufficient cpu", "Insufficient memory"],
        ),
        (
            node("n", allocatable={"cpu": "1", "nvidia.com/gpu": "8"}),
            {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "8"}}}]},
            [],
        ),
    ],
)
def test_filter_reasons(the_node: dict[str, Any], spec: dict[str, Any], reasons: list[str]) -> None:
    assert filter_node(pod(**spec), the_node, []) == reasons


def test_resources_already_used_on_the_node_count() -> None:
    wants_gpus = pod(containers=[{"name": "c", "resources": {"requests": {"nvidia.com/gpu": 6}}}])
    gpu_node = node("n", allocatable={"nvidia.com/gpu": "8"})
    assert filter_node(wants_gpus, gpu_node, []) == []
    assert filter_node(wants_gpus, gpu_node, [wants_gpus]) == ["Insufficient nvidia.com/gpu"]


def test_message_counts_and_sorts_reasons_as_kube_scheduler() -> None:
    message = unschedulable_message(
        3,
        [
            "node(s) didn't match Pod's node affinity/selector",
            "node(s) had untolerated taint {k: v}",
            "node(s) didn't match Pod's node affinity/selector",
        ],
    )
    assert message == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, "
        "2 node(s) didn't match Pod's node affinity/selector."
    )
    assert unschedulable_message(0, []) == "no nodes available to schedule pods"


def test_choose_spreads_to_the_least_loaded_node_ties_by_name() -> None:
    nodes = [node("b"), node("a"), node("c", taints=[TAINT])]
    assert choose_node(pod(), nodes, {}) == ("a", "")
    assert choose_node(pod(), nodes, {"a": [pod()]}) == ("b", "")
    chosen, message = choose_node(pod(nodeSelector={"zone": "z"}), nodes, {})
    assert chosen is None
    assert message.startswith("0/3 nodes are available: 1 node(s) had untolerated taint {k: v}")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("2", 2),
        ("1Ki", 1024),
        ("1e3", 1000),
        ("1.5G", 1_500_000_000),
        (3, 3),
    ],
)
def test_quantities(text: object, value: Fraction) -> None:
    assert parse_quantity(text) == value


def test_a_bad_quantity_names_its_field() -> None:
    bad = pod(containers=[{"name": "c", "resources": {"requests": {"cpu": "lots"}}}])
    with pytest.raises(ValueError, match=r"spec.containers\[0\].resources.requests.cpu"):
        pod_requests(bad)
