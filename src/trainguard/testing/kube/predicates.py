"""The scheduler's filters as pure functions over Pod and Node JSON: which nodes may run a pod.

kube-scheduler runs its filter plugins in a fixed order and a node drops out at the first one
that refuses it (NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit); the
reasons of all refused nodes are counted into the one message a user reads on a Pending pod
("0/3 nodes are available: 1 node(s) had untolerated taint {...}, 2 node(s) didn't match Pod's
node affinity/selector."). Keeping the filters pure lets them be tested table by table and lets
the taint manager reuse the toleration rules (`trainguard.backends.kubernetes.taints`, which the
operator judges its pods' taints with too). The taint manager and the scheduler call these;
nothing here does I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from trainguard.backends.kubernetes.taints import tolerates
from trainguard.testing.kube.quantity import parse_quantity

JSON = dict[str, Any]

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
SCHEDULING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})
DEFAULT_MAX_PODS = 110

REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_TOO_MANY_PODS = "Too many pods"


def untolerated_taint(
    tolerations: Sequence[Mapping[str, Any]],
    taints: Iterable[Mapping[str, Any]],
    effects: frozenset[str] = SCHEDULING_EFFECTS,
) -> Mapping[str, Any] | None:
    """The first taint with one of ``effects`` that no toleration tolerates."""
    for taint in taints:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def effective_taints(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The node's taints, plus ``not-ready:NoSchedule`` for a node that is not Ready.

    The node lifecycle controller taints a node whose Ready condition is not True
    (TaintNodesByCondition); a node made NotReady before that taint landed is refused the same.
    """
    taints: list[Mapping[str, Any]] = list(node.get("spec", {}).get("taints") or [])
    keys = {taint.get("key") for taint in taints}
    if not is_ready(node) and not keys & {TAINT_NOT_READY, TAINT_UNREACHABLE}:
        taints.append({"key": TAINT_NOT_READY, "effect": "NoSchedule"})
    return taints


def is_ready(node: Mapping[str, Any]) -> bool:
    """Whether the node's ``Ready`` condition is ``True``."""
    for condition in node.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def matches_node_selector_requirement(
    requirement: Mapping[str, Any], values_of: Mapping[str, str]
) -> bool:
    """One ``matchExpressions``/``matchFields`` entry against a node's labels (or fields)."""
    key, operator = requirement.get("key", ""), requirement.get("operator", "")
    values = [str(v) for v in requirement.get("values") or []]
    present = key in values_of
    if operator == "In":
        return present and values_of[key] in values
    if operator == "NotIn":
        return not present or values_of[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(values) == 1:
        return _compare_ints(values_of[key], values[0], greater=operator == "Gt")
    return False


def _compare_ints(label: str, bound: str, *, greater: bool) -> bool:
    try:
        have, want = int(label), int(bound)
    except ValueError:
        return False
    return have > want if greater else have < want


def matches_node_selector_term(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """A term's expressions and fields AND'ed; an empty term matches no node (as upstream)."""
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = node.get("metadata", {}).get("labels") or {}
    node_fields = {"metadata.name": node.get("metadata", {}).get("name", "")}
    return all(matches_node_selector_requirement(r, labels) for r in expressions) and all(
        matches_node_selector_requirement(r, node_fields) for r in fields
    )


def matches_node_affinity(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """``spec.nodeSelector`` AND the required node affinity (its terms OR'ed)."""
    spec = pod.get("spec", {})
    labels = node.get("metadata", {}).get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (
        (spec.get("affinity") or {})
        .get("nodeAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    if required is None:
        return True
    terms = required.get("nodeSelectorTerms") or []
    return any(matches_node_selector_term(term, node) for term in terms)


def pod_requests(pod: Mapping[str, Any]) -> dict[str, Fraction]:
    """The pod's summed container requests; a limit without a request counts as the request."""
    total: dict[str, Fraction] = {}
    for index, container in enumerate(pod.get("spec", {}).get("containers") or []):
        resources = container.get("resources") or {}
        wanted = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        for name, quantity in wanted.items():
            field = f"spec.containers[{index}].resources.requests.{name}"
            total[name] = total.get(name, Fraction(0)) + parse_quantity(quantity, field=field)
    return total


def resource_misfits(
    pod: Mapping[str, Any], node: Mapping[str, Any], pods_on_node: Sequence[Mapping[str, Any]]
) -> list[str]:
    """NodeResourcesFit's reasons: "Too many pods", "Insufficient <resource>"."""
    allocatable = node.get("status", {}).get("allocatable") or {}
    reasons = []
    max_pods = parse_quantity(allocatable.get("pods", DEFAULT_MAX_PODS), field="allocatable.pods")
    if len(pods_on_node) + 1 > max_pods:
        reasons.append(REASON_TOO_MANY_PODS)
    used: dict[str, Fraction] = {}
    for other in pods_on_node:
        for name, amount in pod_requests(other).items():
            used[name] = used.get(name, Fraction(0)) + amount
    for name, wanted in sorted(pod_requests(pod).items()):
        if wanted <= 0:
            continue
        have = parse_quantity(allocatable.get(name, 0), field=f"allocatable.{name}")
        if used.get(name, Fraction(0)) + wanted > have:
            reasons.append(f"Insufficient {name}")
    return reasons


def filter_node(
    pod: Mapping[str, Any], node: Mapping[str, Any], pods_on_node: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Why ``node`` cannot run ``pod`` (the first refusing filter's reasons); [] when it fits."""
    tolerations = pod.get("spec", {}).get("tolerations") or []
    if node.get("spec", {}).get("unschedulable"):
        cordon = {"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"}
        if not any(tolerates(t, cordon) for t in tolerations):
            return [REASON_UNSCHEDULABLE]
    taint = untolerated_taint(tolerations, effective_taints(node))
    if taint is not None:
        return [f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"]
    if not matches_node_affinity(pod, node):
        return [REASON_AFFINITY]
    return resource_misfits(pod, node, pods_on_node)


def unschedulable_message(total_nodes: int, reasons: Iterable[str]) -> str:
    """kube-scheduler's FitError text, reasons counted and sorted as upstream sorts them."""
    if total_nodes == 0:
        return "no nodes available to schedule pods"
    counted = sorted(f"{count} {reason}" for reason, count in Counter(reasons).items())
    return f"0/{total_nodes} nodes are available: {', '.join(counted)}."


def choose_node(
    pod: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    pods_by_node: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[str | None, str]:
    """The node to bind ``pod`` to and "", or None and the unschedulable message.

    Among fitting nodes the one running the fewest pods wins (spread); ties go to the first
    name, so placement is deterministic.
    """
    fitting: list[tuple[int, str]] = []
    refusals: list[str] = []
    for node in nodes:
        name = node.get("metadata", {}).get("name", "")
        on_node = pods_by_node.get(name, ())
        reasons = filter_node(pod, node, on_node)
        if reasons:
            refusals.extend(reasons)
        else:
            fitting.append((len(on_node), name))
    if fitting:
        return min(fitting)[1], ""
    return None, unschedulable_message(len(nodes), refusals)
