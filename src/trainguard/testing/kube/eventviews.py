"""One Event storage, two API views: core/v1 ``Event`` and ``events.k8s.io/v1`` ``Event``.

The operator records events through ``events.k8s.io/v1`` (as HyperPod's does), while ``kubectl
describe`` and ``kubectl get events`` read core/v1. The real API server stores one internal type
and converts on the way in and out; the fake stores the core/v1 form and uses these functions,
which follow Kubernetes' conversion (``pkg/apis/events/v1/conversion.go``):

=========================  ==========================
events.k8s.io/v1           core/v1
=========================  ==========================
regarding                  involvedObject
note                       message
reportingController        reportingComponent
deprecatedSource           source
deprecatedFirstTimestamp   firstTimestamp
deprecatedLastTimestamp    lastTimestamp
deprecatedCount            count
=========================  ==========================

``eventTime``, ``series``, ``reportingInstance``, ``action``, ``reason``, ``type`` and ``related``
keep their names. Field selectors given in either form are translated to the stored form with
`core_field_label` (each API accepts its own labels only, as the real server's field label
conversions do) and evaluated with `core_field_value` (the server's selectable fields of the
internal Event: ``source`` falls back to the reporting controller).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

JsonMap = dict[str, Any]

EVENTS_V1 = "events.k8s.io/v1"
CORE_V1 = "v1"

_RENAMED = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_KEPT = (
    "metadata",
    "eventTime",
    "series",
    "reportingInstance",
    "action",
    "reason",
    "type",
    "related",
)
_TO_EVENTS_V1 = {core: v1 for v1, core in _RENAMED.items()}

CORE_FIELD_LABELS = frozenset(
    {
        "metadata.name",
        "metadata.namespace",
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    }
)
"""The field selectors the real server accepts for core/v1 events."""

EVENTS_V1_FIELD_LABELS = {
    "metadata.name": "metadata.name",
    "metadata.namespace": "metadata.namespace",
    "reason": "reason",
    "reportingController": "reportingComponent",
    "source": "source",
    "type": "type",
    **{
        f"regarding.{part}": f"involvedObject.{part}"
        for part in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion")
    },
    "regarding.fieldPath": "involvedObject.fieldPath",
}
"""events.k8s.io/v1 field selectors and the stored core/v1 label each one means."""


def to_core(event: JsonMap) -> JsonMap:
    """The core/v1 form of an ``events.k8s.io/v1`` Event (as the server stores it)."""
    core: JsonMap = {"apiVersion": CORE_V1, "kind": event.get("kind", "Event")}
    for field in _KEPT:
        if field in event:
            core[field] = copy.deepcopy(event[field])
    for v1_name, core_name in _RENAMED.items():
        if v1_name in event:
            core[core_name] = copy.deepcopy(event[v1_name])
    return core


def to_events_v1(core: JsonMap) -> JsonMap:
    """The ``events.k8s.io/v1`` view of a stored core/v1 Event."""
    event: JsonMap = {"apiVersion": EVENTS_V1, "kind": "Event"}
    for field in _KEPT:
        if field in core:
            event[field] = copy.deepcopy(core[field])
    for core_name, v1_name in _TO_EVENTS_V1.items():
        if core_name in core and not _empty(core[core_name]):
            event[v1_name] = copy.deepcopy(core[core_name])
    return event


def view(core: JsonMap, api_version: str) -> JsonMap:
    """The stored event as the client's API version shows it."""
    return to_events_v1(core) if api_version == EVENTS_V1 else copy.deepcopy(core)


def core_field_label(label: str, api_version: str) -> str:
    """Translate a field-selector label of `api_version` to the stored core/v1 field.

    Raises:
        ValueError: for a label the real server does not support for events (it answers 400).
    """
    core = EVENTS_V1_FIELD_LABELS.get(label) if api_version == EVENTS_V1 else label
    if core is None or core not in CORE_FIELD_LABELS:
        raise ValueError(f"field label not supported: {label}")
    return core


def core_field_value(core: Mapping[str, Any], label: str) -> str:
    """The string value a field selector on a core/v1 label compares against ("" if unset)."""
    if label == "source":
        component = (core.get("source") or {}).get("component")
        return str(component or core.get("reportingComponent") or "")
    node: Any = core
    for part in label.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def _empty(value: Any) -> bool:
    return value in (None, "", 0, {})
