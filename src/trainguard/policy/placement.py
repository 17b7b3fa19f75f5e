"""Placement: which node each pod of a job goes to.

Pure: nodes and slots in, an assignment (or the reason there is none) out. The rules follow what
a HyperPod job expects from the Kubernetes scheduler plus HyperPod's health labels:

- one training pod per node (HyperPod jobs are whole-node; pods of other jobs count too);
- only nodes whose ``node-health-status`` is ``Schedulable`` (nodes without the label are
  treated as schedulable, as on clusters without a health agent);
- ``nodeSelector`` labels must match, and required node-affinity terms (In, NotIn, Exists,
  DoesNotExist, Gt, Lt) must hold;
- a pod goes back to the node it had before when that node is still fit (memory-tier
  checkpoints live there), and nodes blamed for recent faults are used only when nothing else fits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainguard import constants as c


@dataclass(frozen=True)
class NodeView:
    """A node as placement sees it."""

    name: str
    labels: Mapping[str, str]
    occupied: bool = False


@dataclass(frozen=True)
class Slot:
    """One pod to place. ``key`` identifies it in the result (e.g. ``rank-3``, ``spare-0``)."""

    key: str
    node_selector: Mapping[str, str] = field(default_factory=dict)
    affinity: Any = None
    previous_node: str | None = None


@dataclass(frozen=True)
class Unschedulable:
    """No assignment exists; ``message`` says which slot could not be placed and why."""

    message: str


def is_schedulable(labels: Mapping[str, str]) -> bool:
    """Whether a node's health label lets new pods land on it."""
    return labels.get(c.LABEL_NODE_HEALTH, c.HEALTH_SCHEDULABLE) == c.HEALTH_SCHEDULABLE


def place(
    slots: Sequence[Slot], nodes: Iterable[NodeView], *, avoid: frozenset[str] = frozenset()
) -> dict[str, str] | Unschedulable:
    """Assign every slot a distinct free node, or explain why that is impossible.

    Near-linear in pods + nodes: a job asking for more pods than there are free Schedulable
    nodes is refused before any matching; slots with the same selector and affinity (every
    pod of a replica group) share one list of fitting nodes, sorted once by preference, that
    a cursor walks past taken nodes — instead of every slot scanning every node.
    """
    free = [n for n in nodes if not n.occupied and is_schedulable(n.labels)]
    if len(slots) > len(free):
        return Unschedulable(
            f"{slots[len(free)].key}: no free Schedulable node left "
            f"({len(slots)} pod(s) to place, {len(free)} free Schedulable node(s))"
        )
    by_name = {n.name: n for n in free}
    taken: set[str] = set()
    result: dict[str, str] = {}
    candidates: dict[str, _Candidates] = {}
    for slot in slots:
        signature = _signature(slot)
        if signature not in candidates:
            fitting = [n for n in free if fits_slot(n, slot)]
            candidates[signature] = _Candidates(sorted(fitting, key=lambda n: _rank(n, avoid)))
        best = _best(slot, candidates[signature], by_name, taken, avoid)
        if best is None:
            return Unschedulable(f"{slot.key}: {_why_not(slot, free, taken)}")
        result[slot.key] = best
        taken.add(best)
    return result


@dataclass
class _Candidates:
    """Nodes fitting one slot signature, best first; ``cursor`` skips nodes taken already."""

    nodes: list[NodeView]
    cursor: int = 0

    def first_free(self, taken: set[str]) -> NodeView | None:
        while self.cursor < len(self.nodes) and self.nodes[self.cursor].name in taken:
            self.cursor += 1
        return self.nodes[self.cursor] if self.cursor < len(self.nodes) else None


def _best(
    slot: Slot,
    candidates: _Candidates,
    by_name: Mapping[str, NodeView],
    taken: set[str],
    avoid: frozenset[str],
) -> str | None:
    """The slot's previous node when still fit and not worse on ``avoid``; else the first free."""
    first = candidates.first_free(taken)
    previous = by_name.get(slot.previous_node or "")
    if previous is None or previous.name in taken or not fits_slot(previous, slot):
        return None if first is None else first.name
    if first is None or (previous.name in avoid) <= (first.name in avoid):
        return previous.name
    return first.name


def _signature(slot: Slot) -> str:
    """Slots with equal signatures fit the same nodes."""
    return repr((sorted(slot.node_selector.items()), slot.affinity))


def fits_slot(node: NodeView, slot: Slot) -> bool:
    """Whether ``node``'s labels satisfy the slot's selector and required affinity."""
    if any(node.labels.get(k) != v for k, v in slot.node_selector.items()):
        return False
    terms = required_terms(slot.affinity)
    return not terms or any(_term_matches(term, node.labels) for term in terms)


def _rank(node: NodeView, avoid: frozenset[str]) -> tuple[bool, int, str]:
    """Preference among fitting nodes: not blamed for faults, then by number, then by name."""
    number = "".join(ch for ch in node.name if ch.isdigit())
    return (node.name in avoid, int(number or 0), node.name)


def _why_not(slot: Slot, free: list[NodeView], taken: set[str]) -> str:
    available = [n for n in free if n.name not in taken]
    if not available:
        return "no free Schedulable node left"
    wanted = ", ".join(f"{k}={v}" for k, v in slot.node_selector.items())
    return f"none of {len(available)} free Schedulable node(s) matches " + (
        f"nodeSelector {wanted}" if wanted else "the required node affinity"
    )


def required_terms(affinity: Any) -> list[list[Mapping[str, Any]]]:
    """The required ``nodeSelectorTerms`` of a pod affinity: a node must match one of them."""
    if not isinstance(affinity, Mapping):
        return []
    node_affinity = affinity.get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    return [
        list(term.get("matchExpressions") or []) for term in required.get("nodeSelectorTerms") or []
    ]


def _term_matches(expressions: list[Mapping[str, Any]], labels: Mapping[str, str]) -> bool:
    return all(_expression_matches(e, labels) for e in expressions)


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    operator = expression.get("operator")
    key, values = expression.get("key", ""), [str(v) for v in expression.get("values") or []]
    value = labels.get(key)
    checks = {
        "In": lambda: value in values,
        "NotIn": lambda: value not in values,
        "Exists": lambda: key in labels,
        "DoesNotExist": lambda: key not in labels,
        "Gt": lambda: _number(value) > _number(values[0] if values else None),
        "Lt": lambda: _number(value) < _number(values[0] if values else None),
    }
    check = checks.get(str(operator))
    return bool(check and check())


def _number(value: str | None) -> float:
    try:
        return float(value) if value is not None else float("nan")
    except ValueError:
        return float("nan")
