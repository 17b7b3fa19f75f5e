"""Placement honours health labels, selectors, affinity, stickiness and repeat offenders."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from trainguard import constants as c
from trainguard.policy.placement import (
    NodeView,
    Slot,
    Unschedulable,
    fits_slot,
    is_schedulable,
    place,
)

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


class CountingLabels(Mapping[str, str]):
    """Node labels that count every lookup placement makes: its operation count."""

    lookups = 0

    def __init__(self, labels: dict[str, str]) -> None:
        self._labels = labels

    def __getitem__(self, key: str) -> str:
        CountingLabels.lookups += 1
        return self._labels[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._labels)

    def __len__(self) -> int:
        return len(self._labels)


def placement_lookups(pods: int) -> tuple[int, dict[str, str] | Unschedulable]:
    """Place ``pods`` pods of two replica groups (one with a selector) on ``pods + 1`` nodes."""
    nodes = [
        NodeView(f"node-{i}", CountingLabels({**HEALTHY, "group": "a" if i % 2 else "b"}))
        for i in range(pods + 1)
    ]
    slots = [
        Slot(f"rank-{i}", node_selector={"group": "a"} if i % 2 else {}, previous_node=f"node-{i}")
        for i in range(pods)
    ]
    CountingLabels.lookups = 0
    result = place(slots, nodes, avoid=frozenset({"node-1"}))
    return CountingLabels.lookups, result


def test_placement_of_100k_pods_is_near_linear() -> None:
    small, placed_small = placement_lookups(10_000)
    large, placed = placement_lookups(100_000)
    assert isinstance(placed, dict) and len(set(placed.values())) == 100_000
    assert isinstance(placed_small, dict)
    # pods x nodes would be 10^10 lookups; a constant number per pod and node is linear
    assert large <= 10 * (100_000 + 100_001)
    assert large <= 12 * small


def reference_place(
    slots: list[Slot], nodes: list[NodeView], avoid: frozenset[str]
) -> dict[str, str] | None:
    """The quadratic algorithm placement used before: every slot scans every node."""
    free = [n for n in nodes if not n.occupied and is_schedulable(n.labels)]
    taken: set[str] = set()
    result: dict[str, str] = {}
    for slot in slots:
        fits = [n for n in free if n.name not in taken and fits_slot(n, slot)]
        if not fits:
            return None
        number = lambda n: int("".join(ch for ch in n.name if ch.isdigit()) or 0)  # noqa: E731
        best = min(
            fits, key=lambda n: (n.name in avoid, n.name != slot.previous_node, number(n), n.name)
        )
        result[slot.key] = best.name
        taken.add(best.name)
    return result


def test_same_assignment_as_the_quadratic_algorithm() -> None:
    nodes = [
        node(f"node-{i}", occupied=i % 7 == 0, group="a" if i % 3 else "b") for i in range(300)
    ]
    slots = [
        Slot(
            f"rank-{i}",
            node_selector={"group": "a"} if i % 2 else {},
            previous_node=f"node-{(i * 5) % 310}" if i % 4 else None,
        )
        for i in range(200)
    ]
    avoid = frozenset(f"node-{i}" for i in range(0, 300, 11))
    assert place(slots, nodes, avoid=avoid) == reference_place(slots, nodes, avoid)


def test_more_pods_than_free_nodes_is_refused_before_matching() -> None:
    nodes = [NodeView(f"node-{i}", CountingLabels(dict(HEALTHY))) for i in range(10)]
    CountingLabels.lookups = 0
    result = place([Slot(f"rank-{i}") for i in range(100_000)], nodes)
    assert isinstance(result, Unschedulable)
    assert "100000 pod(s) to place, 10 free Schedulable node(s)" in result.message
    assert CountingLabels.lookups <= 10
