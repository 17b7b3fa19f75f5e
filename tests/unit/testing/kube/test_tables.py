"""Table output: the columns kubectl get prints for built-ins and our CRD."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trainguard.spec.crd import crd
from trainguard.testing.kube.jsonpath import compile_path
from trainguard.testing.kube.tables import include_object, table, wants_table
from trainguard.testing.kube.timefmt import human_duration

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def names(result: dict[str, Any], *, wide: bool = False) -> list[str]:
    return [c["name"] for c in result["columnDefinitions"] if wide or c["priority"] == 0]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (119, "119s"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (30 * 3600, "30h"),
        (50 * 3600, "2d2h"),
        (10 * 86400, "10d"),
        (3 * 365 * 86400, "3y"),
        (-0.5, "0s"),
    ],
)
def test_human_duration_matches_apimachinery(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_accept_negotiation() -> None:
    kubectl = (
        "application/json;as=Table;v=v1;g=meta.k8s.io,"
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    )
    assert wants_table(kubectl)
    assert not wants_table("application/json")
    assert not wants_table("application/json, application/json;as=Table;v=v1;g=meta.k8s.io")
    assert not wants_table(None)


def test_include_object_default_and_error() -> None:
    assert include_object(None) == "Metadata"
    with pytest.raises(ValueError, match="includeObject"):
        include_object("Everything")


def test_pod_table_columns_and_cells() -> None:
    pod = {
        "metadata": {"name": "job-pods-0-0", "creationTimestamp": ago(seconds=90)},
        "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "podIP": "127.1.0.2",
            "containerStatuses": [
                {
                    "ready": True,
                    "state": {"running": {}},
                    "restartCount": 1,
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(minutes=5)}},
                },
                {
                    "ready": False,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "restartCount": 0,
                },
            ],
        },
    }
    result = table([pod], kind="Pod", now=NOW, include="Object")
    assert names(result) == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert names(result, wide=True)[5:] == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    row = result["rows"][0]
    assert row["cells"] == [
        "job-pods-0-0",
        "1/2",
        "CrashLoopBackOff",
        "1 (5m ago)",
        "90s",
        "127.1.0.2",
        "n1",
        "<none>",
        "<none>",
    ]
    assert row["object"] is pod


@pytest.mark.parametrize(
    ("status", "deleting", "expected"),
    [
        ({"phase": "Pending"}, False, "Pending"),
        (
            {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]},
            False,
            "ExitCode:3",
        ),
        (
            {
                "phase": "Failed",
                "containerStatuses": [{"state": {"terminated": {"exitCode": 0, "signal": 9}}}],
            },
            False,
            "Signal:9",
        ),
        (
            {
                "phase": "Succeeded",
                "containerStatuses": [{"state": {"terminated": {"reason": "Completed"}}}],
            },
            False,
            "Completed",
        ),
        ({"phase": "Running"}, True, "Terminating"),
    ],
)
def test_pod_status_column(status: dict[str, Any], deleting: bool, expected: str) -> None:
    metadata: dict[str, Any] = (
        {"name": "p", "deletionTimestamp": ago(seconds=1)} if deleting else {"name": "p"}
    )
    row = table([{"metadata": metadata, "spec": {}, "status": status}], kind="Pod", now=NOW)[
        "rows"
    ][0]
    assert row["cells"][2] == expected
    assert row["object"]["kind"] == "PartialObjectMetadata"


def test_node_table() -> None:
    node = {
        "metadata": {
            "name": "n1",
            "creationTimestamp": ago(hours=2),
            "labels": {"node-role.kubernetes.io/worker": ""},
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}],
            "nodeInfo": {"kubeletVersion": "v1.37.0"},
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        },
    }
    result = table([node], kind="Node", now=NOW, include="None")
    assert names(result) == ["Name", "Status", "Roles", "Age", "Version"]
    assert result["rows"][0]["cells"][:6] == [
        "n1",
        "NotReady,SchedulingDisabled",
        "worker",
        "120m",
        "v1.37.0",
        "127.0.0.1",
    ]
    assert "object" not in result["rows"][0]


def test_service_secret_configmap_namespace_lease_tables() -> None:
    service = {
        "metadata": {"name": "job"},
        "spec": {
            "clusterIP": "None",
            "ports": [{"port": 8080, "protocol": "TCP"}],
            "selector": {"HPJob": "job"},
        },
    }
    assert table([service], kind="Service", now=NOW)["rows"][0]["cells"] == [
        "job",
        "ClusterIP",
        "None",
        "<none>",
        "8080/TCP",
        "<unknown>",
        "HPJob=job",
    ]
    secret = {"metadata": {"name": "s"}, "type": "Opaque", "data": {"token": "eA=="}}
    assert table([secret], kind="Secret", now=NOW)["rows"][0]["cells"][:3] == ["s", "Opaque", 1]
    assert names(table([], kind="ConfigMap", now=NOW)) == ["Name", "Data", "Age"]
    assert names(table([], kind="Namespace", now=NOW)) == ["Name", "Status", "Age"]
    lease = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "op-1"}}
    assert table([lease], kind="Lease", now=NOW)["rows"][0]["cells"][:2] == ["l", "op-1"]


def test_event_table_from_an_events_v1_event_stored_as_core() -> None:
    event = {
        "metadata": {"name": "job.1"},
        "eventTime": ago(seconds=30),
        "reason": "NodeFault",
        "type": "Warning",
        "message": "Found unhealthy node n1",
        "reportingComponent": "trainguard",
        "involvedObject": {"kind": "HyperPodPyTorchJob", "name": "job"},
    }
    result = table([event], kind="Event", now=NOW)
    assert names(result) == ["Last Seen", "Type", "Reason", "Object", "Message"]
    assert result["rows"][0]["cells"] == [
        "30s",
        "Warning",
        "NodeFault",
        "hyperpodpytorchjob/job",
        "",
        "trainguard",
        "Found unhealthy node n1",
        "30s",
        1,
        "job.1",
    ]


def test_our_crd_columns_status_restarts_age() -> None:
    job = {
        "metadata": {"name": "quickstart", "creationTimestamp": ago(minutes=3)},
        "status": {"conditions": [{"type": "Created"}, {"type": "Running"}], "restartCount": 2},
    }
    result = table(
        [job, {"metadata": {"name": "new"}}], kind="HyperPodPyTorchJob", now=NOW, crd=crd()
    )
    assert names(result) == ["Name", "Status", "Restarts", "Age"]
    assert result["rows"][0]["cells"] == ["quickstart", "Running", 2, "3m"]
    assert result["rows"][1]["cells"] == ["new", None, None, None]


def test_crd_without_printer_columns_gets_age_and_crds_get_created_at() -> None:
    crd = {"spec": {"versions": [{"name": "v1"}]}}
    result = table(
        [{"metadata": {"name": "x", "creationTimestamp": ago(seconds=7)}}],
        kind="X",
        now=NOW,
        crd=crd,
    )
    assert result["rows"][0]["cells"] == ["x", "7s"]
    plain = table(
        [{"metadata": {"name": "c", "creationTimestamp": "2026-01-01T00:00:00Z"}}],
        kind="CustomResourceDefinition",
        now=NOW,
    )
    assert names(plain) == ["Name", "Created At"]
    assert plain["rows"][0]["cells"] == ["c", "2026-01-01T00:00:00Z"]


def test_jsonpath_subset() -> None:
    doc = {
        "status": {
            "conditions": [{"type": "A", "status": "True"}, {"type": "Ready", "status": "False"}]
        }
    }
    assert compile_path(".status.conditions[-1:].type")(doc) == ["Ready"]
    assert compile_path(".status.conditions[0].type")(doc) == ["A"]
    assert compile_path('.status.conditions[?(@.type=="Ready")].status')(doc) == ["False"]
    assert compile_path(".status.conditions[?(@.type!='Ready')].type")(doc) == ["A"]
    assert compile_path(".status.conditions[*].type")(doc) == ["A", "Ready"]
    assert compile_path("{.status.missing}")(doc) == []
    with pytest.raises(ValueError, match=r"\.\."):
        compile_path("..type")
    with pytest.raises(ValueError, match="unsupported"):
        compile_path(".a[1,2]")
