"""Events over HTTP in both APIs: core/v1 and events.k8s.io/v1 share one storage.

What the operator (events.k8s.io/v1, through lightkube) and kubectl (core/v1) rely on: either
API reads, lists, watches, patches and deletes what the other wrote, with field selectors in
its own spelling and one resourceVersion sequence; MicroTimes are decoded as the real server
decodes them.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from trainguard.testing.kube import KubeApiServer

CORE = "/api/v1/namespaces/default/events"
EVENTS_V1 = "/apis/events.k8s.io/v1/namespaces/default/events"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def _v1_event(name: str, regarding: str = "job-a", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name},
        "eventTime": "2026-01-01T00:00:00.250000Z",
        "regarding": {"kind": "HyperPodPyTorchJob", "name": regarding, "namespace": "default"},
        "reason": "NodeFault",
        "note": f"about {regarding}",
        "type": "Warning",
        "action": "Remediate",
        "reportingController": "trainguard-operator",
        "reportingInstance": "operator-0",
        **extra,
    }


def _core_event(name: str, involved: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "name": involved, "namespace": "default"},
        "reason": "Started",
        "message": f"started {involved}",
        "type": "Normal",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:05Z",
        "count": 2,
    }


def test_events_k8s_io_is_discovered(client: httpx.Client) -> None:
    groups = client.get("/apis").json()["groups"]
    assert any(g["name"] == "events.k8s.io" for g in groups)
    resources = client.get("/apis/events.k8s.io/v1").json()["resources"]
    assert {"name": "events", "kind": "Event"}.items() <= resources[0].items()


def test_an_events_v1_write_reads_back_in_both_forms(client: httpx.Client) -> None:
    created = client.post(EVENTS_V1, json=_v1_event("e1"))
    assert created.status_code == 201, created.text
    assert created.json()["note"] == "about job-a"
    core = client.get(f"{CORE}/e1").json()
    assert core["apiVersion"] == "v1"
    assert core["involvedObject"]["name"] == "job-a"
    assert core["message"] == "about job-a"
    assert core["reportingComponent"] == "trainguard-operator"
    again = client.get(f"{EVENTS_V1}/e1").json()
    assert again == created.json()
    assert again["metadata"]["resourceVersion"] == core["metadata"]["resourceVersion"]


def test_a_core_event_is_listed_by_events_v1_with_a_regarding_selector(
    client: httpx.Client,
) -> None:
    client.post(CORE, json=_core_event("c1", "pod-a"))
    client.post(CORE, json=_core_event("c2", "pod-b"))
    listed = client.get(EVENTS_V1, params={"fieldSelector": "regarding.name=pod-b"}).json()
    assert listed["kind"] == "EventList"
    assert listed["apiVersion"] == "events.k8s.io/v1"
    [item] = listed["items"]
    assert item["metadata"]["name"] == "c2"
    assert item["note"] == "started pod-b"
    assert item["deprecatedSource"] == {"component": "kubelet", "host": "n1"}
    assert item["deprecatedCount"] == 2
    by_source = client.get(EVENTS_V1, params={"fieldSelector": "source=kubelet"}).json()
    assert len(by_source["items"]) == 2
    core_spelling = client.get(EVENTS_V1, params={"fieldSelector": "involvedObject.name=pod-b"})
    assert core_spelling.status_code == 400
    assert "field label not supported: involvedObject.name" in core_spelling.json()["message"]
    core_list = client.get(CORE, params={"fieldSelector": "involvedObject.name=pod-a"}).json()
    assert [i["metadata"]["name"] for i in core_list["items"]] == ["c1"]


def test_patch_and_delete_through_events_v1_change_the_one_stored_event(
    client: httpx.Client,
) -> None:
    client.post(CORE, json=_core_event("c1", "pod-a"))
    patched = client.patch(
        f"{EVENTS_V1}/c1",
        json={"note": "restarted pod-a"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["note"] == "restarted pod-a"
    assert client.get(f"{CORE}/c1").json()["message"] == "restarted pod-a"
    assert client.delete(f"{EVENTS_V1}/c1").status_code == 200
    assert client.get(f"{CORE}/c1").status_code == 404


def _watch(client: httpx.Client, path: str, version: str) -> list[dict[str, Any]]:
    query = {"watch": "true", "timeoutSeconds": "1", "resourceVersion": version}
    with client.stream("GET", path, params=query) as answer:
        assert answer.status_code == 200
        return [json.loads(line) for line in answer.iter_lines() if line]


def test_a_watch_through_either_api_sees_the_others_writes(client: httpx.Client) -> None:
    version = client.get(CORE).json()["metadata"]["resourceVersion"]

    def write_later() -> None:
        time.sleep(0.2)
        client.post(EVENTS_V1, json=_v1_event("from-v1"))
        client.post(CORE, json=_core_event("from-core", "pod-a"))

    writer = threading.Thread(target=write_later)
    writer.start()
    results: dict[str, list[dict[str, Any]]] = {}
    watchers = [
        threading.Thread(target=lambda p=p: results.__setitem__(p, _watch(client, p, version)))
        for p in (CORE, EVENTS_V1)
    ]
    for watcher in watchers:
        watcher.start()
    for thread in (writer, *watchers):
        thread.join()
    core_seen = {e["object"]["metadata"]["name"]: e["object"] for e in results[CORE]}
    v1_seen = {e["object"]["metadata"]["name"]: e["object"] for e in results[EVENTS_V1]}
    assert set(core_seen) == set(v1_seen) == {"from-v1", "from-core"}
    assert core_seen["from-v1"]["message"] == "about job-a"
    assert v1_seen["from-core"]["note"] == "started pod-a"
    assert v1_seen["from-core"]["apiVersion"] == "events.k8s.io/v1"


def test_a_watch_with_a_regarding_selector_filters_the_stored_events(
    client: httpx.Client,
) -> None:
    version = client.get(CORE).json()["metadata"]["resourceVersion"]
    client.post(CORE, json=_core_event("c1", "pod-a"))
    client.post(EVENTS_V1, json=_v1_event("v1", regarding="job-b"))
    query = {
        "watch": "true",
        "timeoutSeconds": "1",
        "resourceVersion": version,
        "fieldSelector": "regarding.name=job-b",
    }
    with client.stream("GET", EVENTS_V1, params=query) as answer:
        seen = [json.loads(line) for line in answer.iter_lines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in seen] == [("ADDED", "v1")]


def test_micro_times_are_decoded_as_the_real_server_does(client: httpx.Client) -> None:
    whole_second = client.post(EVENTS_V1, json=_v1_event("e1", eventTime="2026-01-01T00:00:00Z"))
    assert whole_second.status_code == 400
    assert "cannot be handled as a Event" in whole_second.json()["message"]
    offset = _v1_event("e2", eventTime="2026-01-01T02:00:00.000001+02:00")
    stored = client.post(EVENTS_V1, json=offset).json()
    assert stored["eventTime"] == "2026-01-01T00:00:00.000001Z"


def test_events_v1_tables_print_the_core_columns(
    server: KubeApiServer, client: httpx.Client
) -> None:
    client.post(EVENTS_V1, json=_v1_event("e1"))
    table = client.get(EVENTS_V1, headers={"Accept": TABLE}).json()
    core_table = client.get(CORE, headers={"Accept": TABLE}).json()
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == [c["name"] for c in core_table["columnDefinitions"]]
    assert table["rows"][0]["cells"][names.index("Reason")] == "NodeFault"
    assert server.objects.get(("", "v1", "events"), "default", "e1")["message"] == "about job-a"


def test_server_side_apply_through_events_v1_creates_then_updates(client: httpx.Client) -> None:
    path = f"{EVENTS_V1}/applied"
    headers = {"Content-Type": "application/apply-patch+yaml"}
    params = {"fieldManager": "operator", "fieldValidation": "Strict"}
    config = {**_v1_event("applied"), "metadata": {"name": "applied", "namespace": "default"}}
    created = client.patch(path, params=params, headers=headers, content=json.dumps(config))
    assert created.status_code == 201, created.text
    assert [m["manager"] for m in created.json()["metadata"]["managedFields"]] == ["operator"]
    config["note"] = "changed"
    updated = client.patch(path, params=params, headers=headers, content=json.dumps(config))
    assert updated.status_code == 200, updated.text
    assert client.get(f"{CORE}/applied").json()["message"] == "changed"
