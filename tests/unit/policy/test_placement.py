"""Placement honours health labels, selectors, affinity, stickiness and repeat offenders."""

from __future__ import annotations

from trainguard import constants as c
from trainguard.policy.placement import NodeView, Slot, Unschedulable, place

HEALTHY = {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE, c.LABEL_INSTANCE_TYPE: "ml.local"}


def node(name: str, occupied: bool = False, **labels: str) -> NodeView:
    return NodeView(name, {**HEALTHY, **labels}, occupied)


def test_one_pod_per_node_in_name_order() -> None:
    nodes = [node("node-10"), node("node-2"), node("node-1", occupied=True), node("node-0")]
    assert place([Slot("rank-0"), Slot("rank-1")], nodes) == {
        "rank-0": "node-0",
        "rank-1": "node-2",
    }


def test_unhealthy_nodes_are_never_used() -> None:
    bad = NodeView("node-0", {c.LABEL_NODE_HEALTH: c.HEALTH_PENDING_REBOOT})
    result = place([Slot("rank-0")], [bad])
    assert isinstance(result, Unschedulable)
    assert "no free Schedulable node" in result.message


def test_node_selector_must_match() -> None:
    nodes = [node("node-0"), node("node-1", **{c.LABEL_DEEP_HEALTH: c.DEEP_HEALTH_PASSED})]
    slot = Slot("rank-0", node_selector={c.LABEL_DEEP_HEALTH: c.DEEP_HEALTH_PASSED})
    assert place([slot], nodes) == {"rank-0": "node-1"}
    result = place([slot, Slot("rank-1", node_selector=slot.node_selector)], nodes)
    assert isinstance(result, Unschedulable)
    assert "rank-1" in result.message


def test_required_affinity_from_the_hpto_sample() -> None:
    expressions = [
        {"key": c.LABEL_NODE_HEALTH, "operator": "In", "values": ["Schedulable"]},
        {"key": c.LABEL_COMPUTE_TYPE, "operator": "In", "values": ["ml.p5.48xlarge"]},
    ]
    required = {"nodeSelectorTerms": [{"matchExpressions": expressions}]}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}
    nodes = [node("node-0"), node("node-1", **{c.LABEL_COMPUTE_TYPE: "ml.p5.48xlarge"})]
    assert place([Slot("rank-0", affinity=affinity)], nodes) == {"rank-0": "node-1"}


def test_previous_node_is_preferred_and_offenders_avoided() -> None:
    nodes = [node("node-0"), node("node-1"), node("node-2")]
    slots = [Slot("rank-0", previous_node="node-2"), Slot("rank-1")]
    assert place(slots, nodes) == {"rank-0": "node-2", "rank-1": "node-0"}
    assert place(slots, nodes, avoid=frozenset({"node-0"})) == {
        "rank-0": "node-2",
        "rank-1": "node-1",
    }


def test_avoided_nodes_are_used_when_nothing_else_fits() -> None:
    nodes = [node("node-0"), node("node-1")]
    assert place([Slot("a"), Slot("b")], nodes, avoid=frozenset({"node-0"})) == {
        "a": "node-1",
        "b": "node-0",
    }
