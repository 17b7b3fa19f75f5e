"""core/v1 and events.k8s.io/v1 views of one stored Event."""

from __future__ import annotations

import pytest

from trainguard.testing.kube.eventviews import (
    core_field_label,
    core_field_value,
    to_core,
    to_events_v1,
    view,
)

EVENT_V1 = {
    "apiVersion": "events.k8s.io/v1",
    "kind": "Event",
    "metadata": {"name": "job.1", "namespace": "default"},
    "eventTime": "2026-01-01T00:00:00.000000Z",
    "reportingController": "trainguard.io/operator",
    "reportingInstance": "operator-0",
    "action": "Remediate",
    "reason": "NodeFault",
    "type": "Warning",
    "note": "Found unhealthy node n1",
    "regarding": {"kind": "HyperPodPyTorchJob", "name": "job", "namespace": "default", "uid": "u1"},
    "series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"},
    "deprecatedCount": 3,
}


def test_events_v1_maps_to_core_fields() -> None:
    core = to_core(EVENT_V1)
    assert core["apiVersion"] == "v1"
    assert core["involvedObject"] == EVENT_V1["regarding"]
    assert core["message"] == "Found unhealthy node n1"
    assert core["reportingComponent"] == "trainguard.io/operator"
    assert core["count"] == 3
    for kept in (
        "eventTime",
        "series",
        "reportingInstance",
        "action",
        "reason",
        "type",
        "metadata",
    ):
        assert core[kept] == EVENT_V1[kept]
    assert "note" not in core
    assert "regarding" not in core


def test_round_trip_through_core_is_lossless() -> None:
    assert to_events_v1(to_core(EVENT_V1)) == EVENT_V1


def test_core_event_shows_deprecated_fields_in_events_v1() -> None:
    core = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p"},
        "message": "Started",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:05Z",
        "count": 2,
    }
    event = view(core, "events.k8s.io/v1")
    assert event["regarding"] == {"kind": "Pod", "name": "p"}
    assert event["deprecatedSource"] == {"component": "kubelet", "host": "n1"}
    assert event["deprecatedFirstTimestamp"] == "2026-01-01T00:00:00Z"
    assert event["deprecatedLastTimestamp"] == "2026-01-01T00:00:05Z"
    assert event["deprecatedCount"] == 2
    assert view(core, "v1") == core


def test_field_selectors_in_either_form_reach_the_stored_fields() -> None:
    core = to_core(EVENT_V1)
    assert core_field_label("regarding.name", "events.k8s.io/v1") == "involvedObject.name"
    assert core_field_label("reportingController", "events.k8s.io/v1") == "reportingComponent"
    assert core_field_label("involvedObject.uid", "v1") == "involvedObject.uid"
    assert core_field_value(core, "involvedObject.name") == "job"
    assert core_field_value(core, "type") == "Warning"
    assert core_field_value(core, "source") == "trainguard.io/operator"  # falls back as upstream
    assert core_field_value(core, "involvedObject.fieldPath") == ""


def test_unsupported_field_label_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="note"):
        core_field_label("note", "events.k8s.io/v1")


def test_each_api_accepts_only_its_own_labels() -> None:
    with pytest.raises(ValueError, match=r"involvedObject\.name"):
        core_field_label("involvedObject.name", "events.k8s.io/v1")
    with pytest.raises(ValueError, match=r"regarding\.name"):
        core_field_label("regarding.name", "v1")
    assert core_field_label("source", "events.k8s.io/v1") == "source"


def test_source_selects_the_component_before_the_reporting_controller() -> None:
    core = {"source": {"component": "kubelet"}, "reportingComponent": "other"}
    assert core_field_value(core, "source") == "kubelet"
