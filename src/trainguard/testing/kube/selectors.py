"""Label and field selectors, parsed once per request and matched against stored objects.

The grammar is the API server's (``k8s.io/apimachinery/pkg/labels`` and ``fields``): label
requirements ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``;
field requirements ``f=v``, ``f==v``, ``f!=v`` over the few fields each resource indexes.
Unsupported fields are refused with 400 as the real server does, so a client relying on a
field the real server would not filter by fails here too. Event selectors in either API
(``regarding.name`` or ``involvedObject.name``) are translated to, and evaluated on, the
stored core/v1 form (`eventviews`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from trainguard.testing.kube import eventviews
from trainguard.testing.kube.apierrors import bad_request

_SET_OP = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\((.*)\)\s*$")
_EQ_OP = re.compile(r"^\s*([^!=\s]+)\s*(==|!=|=)\s*(\S*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([^!=\s()]+)\s*$")

_COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
FIELDS_BY_RESOURCE: Mapping[str, frozenset[str]] = {
    "pods": frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        }
    ),
    "nodes": frozenset({"spec.unschedulable"}),
    "secrets": frozenset({"type"}),
    "namespaces": frozenset({"status.phase"}),
}
EVENT_API_VERSIONS = frozenset({eventviews.CORE_V1, eventviews.EVENTS_V1})

Matcher = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Requirement:
    """One clause: ``key`` compared by ``op`` (=, !=, in, notin, exists, !exists)."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def matches(self, present: bool, value: str | None) -> bool:
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values  # != and notin match absent keys


def _split_clauses(text: str) -> list[str]:
    """Split on commas outside parentheses (``a in (x,y),b`` is two clauses)."""
    clauses, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            clauses.append(current)
            current = ""
        else:
            current += char
    clauses.append(current)
    return [clause for clause in clauses if clause.strip()]


def _label_requirement(clause: str) -> Requirement:
    if match := _SET_OP.match(clause):
        key, op, raw = match.groups()
        values = frozenset(v.strip() for v in raw.split(",") if v.strip())
        return Requirement(key, op, values)
    if match := _EQ_OP.match(clause):
        key, op, value = match.groups()
        return Requirement(key, "!=" if op == "!=" else "=", frozenset({value}))
    if match := _EXISTS.match(clause):
        negated, key = match.groups()
        return Requirement(key, "!exists" if negated else "exists")
    raise bad_request(f"unable to parse requirement: invalid label selector clause {clause!r}")


def parse_label_selector(text: str | None) -> list[Requirement]:
    """The requirements of a ``labelSelector`` query value; 400 BadRequest when malformed."""
    return [_label_requirement(clause) for clause in _split_clauses(text or "")]


def labels_match(requirements: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(req.matches(req.key in labels, labels.get(req.key)) for req in requirements)


def parse_field_selector(
    text: str | None, resource: str, *, api_version: str = "v1"
) -> list[Requirement]:
    """The requirements of a ``fieldSelector``; 400 naming a field the resource does not index.

    Event labels come back as the stored core/v1 labels (``regarding.name`` becomes
    ``involvedObject.name``).
    """
    events = resource == "events" and api_version in EVENT_API_VERSIONS
    allowed = _COMMON_FIELDS | FIELDS_BY_RESOURCE.get(resource, frozenset())
    requirements = []
    for clause in _split_clauses(text or ""):
        match = _EQ_OP.match(clause)
        if match is None:
            raise bad_request(f"invalid field selector clause {clause!r}")
        key, op, value = match.groups()
        if events:
            try:
                key = eventviews.core_field_label(key, api_version)
            except ValueError as exc:
                raise bad_request(str(exc)) from exc
        elif key not in allowed:
            raise bad_request(f'field label not supported: "{key}"')
        requirements.append(Requirement(key, "!=" if op == "!=" else "=", frozenset({value})))
    return requirements


def field_value(obj: Mapping[str, Any], path: str) -> str | None:
    """The value at a dotted path as a selector compares it (booleans as ``true``/``false``)."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


def fields_match(
    requirements: list[Requirement],
    obj: Mapping[str, Any],
    value_of: Callable[[Mapping[str, Any], str], str | None] = field_value,
) -> bool:
    """Absent fields compare as the empty string, as the API server's field sets do."""
    return all(req.matches(True, value_of(obj, req.key) or "") for req in requirements)


def selector_matcher(
    label_selector: str | None,
    field_selector: str | None,
    resource: str,
    *,
    api_version: str = "v1",
) -> Matcher:
    """One predicate for both selectors of a list or watch request (on stored objects)."""
    labels = parse_label_selector(label_selector)
    fields = parse_field_selector(field_selector, resource, api_version=api_version)
    events = resource == "events" and api_version in EVENT_API_VERSIONS
    value_of = eventviews.core_field_value if events else field_value

    def matches(obj: dict[str, Any]) -> bool:
        return labels_match(labels, obj.get("metadata", {}).get("labels")) and fields_match(
            fields, obj, value_of
        )

    return matches
