"""Watch over HTTP: initial ADDED, resume from a resourceVersion, 410 after compaction,
bookmarks, and selector transitions reported as ADDED/DELETED."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from trainguard.testing.kube import KubeApiServer

CMS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


def _watch(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every event of a watch that ends by its own ``timeoutSeconds``."""
    query = {"watch": "true", "timeoutSeconds": "1", **params}
    with client.stream("GET", path, params=query) as answer:
        assert answer.status_code == 200
        return [json.loads(line) for line in answer.iter_lines() if line]


def test_watch_from_unset_version_lists_then_streams(client: httpx.Client) -> None:
    client.post(CMS, json={"metadata": {"name": "a"}})

    def write_later() -> None:
        time.sleep(0.3)
        client.post(CMS, json={"metadata": {"name": "b"}})

    writer = threading.Thread(target=write_later)
    writer.start()
    events = _watch(client, CMS)
    writer.join()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
    ]


def test_watch_resumes_after_a_resource_version(client: httpx.Client) -> None:
    listed = client.post(CMS, json={"metadata": {"name": "a"}}).json()
    version = listed["metadata"]["resourceVersion"]
    client.patch(
        f"{CMS}/a",
        json={"data": {"k": "v"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    client.delete(f"{CMS}/a")
    events = _watch(client, CMS, resourceVersion=version)
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert events[0]["object"]["data"] == {"k": "v"}


def test_watch_from_compacted_version_answers_410(
    server: KubeApiServer, client: httpx.Client
) -> None:
    old = client.post(CMS, json={"metadata": {"name": "a"}}).json()["metadata"]["resourceVersion"]
    client.post(CMS, json={"metadata": {"name": "b"}})
    server.objects.compact()
    events = _watch(client, CMS, resourceVersion=old)
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    assert (events[0]["object"]["code"], events[0]["object"]["reason"]) == (410, "Expired")
    exact = client.get(CMS, params={"resourceVersion": old, "resourceVersionMatch": "Exact"})
    assert exact.status_code == 410


def test_bookmarks_carry_a_resumable_version(client: httpx.Client) -> None:
    client.post(CMS, json={"metadata": {"name": "a"}})
    events = _watch(client, CMS, resourceVersion="0", allowWatchBookmarks="true")
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks, "a one-second watch with 0.2 s bookmarks sends some"
    version = bookmarks[-1]["object"]["metadata"]["resourceVersion"]
    client.post(CMS, json={"metadata": {"name": "b"}})
    resumed = _watch(client, CMS, resourceVersion=version)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in resumed] == [("ADDED", "b")]


def test_field_selector_watch_sees_binding_as_added(client: httpx.Client) -> None:
    start = client.post(PODS, json={"metadata": {"name": "p"}, "spec": {"containers": []}}).json()
    client.post(f"{PODS}/p/binding", json={"target": {"kind": "Node", "name": "n1"}})
    client.patch(
        f"{PODS}/p",
        json={"spec": {"nodeName": "n1"}, "metadata": {"labels": {"x": "y"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    events = _watch(
        client,
        PODS,
        resourceVersion=start["metadata"]["resourceVersion"],
        fieldSelector="spec.nodeName=n1",
    )
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED"]
    gone = _watch(client, PODS, resourceVersion="0", labelSelector="x=z")
    assert gone == []


def test_watch_asking_for_tables_streams_one_row_tables(client: httpx.Client) -> None:
    created = client.post(CMS, json={"metadata": {"name": "a"}, "data": {"k": "v"}}).json()
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    query = {"watch": "true", "timeoutSeconds": "1"}
    with client.stream("GET", CMS, params=query, headers={"Accept": accept}) as answer:
        events = [json.loads(line) for line in answer.iter_lines() if line]
    [event] = events
    table = event["object"]
    assert (event["type"], table["kind"]) == ("ADDED", "Table")
    assert [c["name"] for c in table["columnDefinitions"]][:2] == ["Name", "Data"]
    [row] = table["rows"]
    assert row["cells"][:2] == ["a", 1]
    assert table["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
