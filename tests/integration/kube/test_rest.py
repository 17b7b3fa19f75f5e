"""REST verbs over real HTTP: CRUD, conflicts, errors as metav1.Status, auth, discovery."""

from __future__ import annotations

import httpx

from trainguard.testing.kube import KubeApiServer

CMS = "/api/v1/namespaces/default/configmaps"


def test_requests_without_the_token_are_unauthorized(server: KubeApiServer) -> None:
    answer = httpx.get(f"{server.url}{CMS}")
    assert answer.status_code == 401
    assert answer.json()["reason"] == "Unauthorized"
    assert httpx.get(f"{server.url}/healthz").text == "ok"


def test_crud_with_stale_update_conflict(client: httpx.Client) -> None:
    created = client.post(CMS, json={"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert created.status_code == 201
    stale = created.json()
    again = client.post(CMS, json={"metadata": {"name": "c"}})
    assert (again.status_code, again.json()["reason"]) == (409, "AlreadyExists")
    fresh = client.put(f"{CMS}/c", json={**stale, "data": {"a": "2"}})
    assert fresh.status_code == 200
    assert int(fresh.json()["metadata"]["resourceVersion"]) > int(
        stale["metadata"]["resourceVersion"]
    )
    conflict = client.put(f"{CMS}/c", json={**stale, "data": {"a": "3"}})
    assert conflict.status_code == 409
    assert conflict.json()["reason"] == "Conflict"
    assert "the object has been modified" in conflict.json()["message"]
    patched = client.patch(
        f"{CMS}/c",
        json={"data": {"b": "x", "a": None}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.json()["data"] == {"b": "x"}
    listed = client.get(CMS).json()
    assert listed["kind"] == "ConfigMapList"
    assert listed["metadata"]["resourceVersion"] == patched.json()["metadata"]["resourceVersion"]
    assert client.delete(f"{CMS}/c").json()["status"] == "Success"
    missing = client.get(f"{CMS}/c")
    assert (missing.status_code, missing.json()["reason"]) == (404, "NotFound")
    assert missing.json()["message"] == 'configmaps "c" not found'


def test_dry_run_writes_nothing(client: httpx.Client) -> None:
    answer = client.post(CMS, params={"dryRun": "All"}, json={"metadata": {"name": "d"}})
    assert answer.status_code == 201
    assert client.get(f"{CMS}/d").status_code == 404


def test_selectors_and_pagination(client: httpx.Client) -> None:
    for index in range(5):
        labels = {"n": str(index), "even": str(index % 2 == 0).lower()}
        client.post(CMS, json={"metadata": {"name": f"c{index}", "labels": labels}})
    even = client.get(CMS, params={"labelSelector": "even=true,n notin (4)"}).json()["items"]
    assert [i["metadata"]["name"] for i in even] == ["c0", "c2"]
    by_name = client.get(CMS, params={"fieldSelector": "metadata.name=c3"}).json()["items"]
    assert [i["metadata"]["name"] for i in by_name] == ["c3"]
    first = client.get(CMS, params={"limit": 2}).json()
    rest = client.get(CMS, params={"limit": 10, "continue": first["metadata"]["continue"]}).json()
    names = [i["metadata"]["name"] for i in first["items"] + rest["items"]]
    assert names == [f"c{i}" for i in range(5)]
    assert "continue" not in rest["metadata"]


def test_cluster_scoped_and_all_namespace_lists(client: httpx.Client) -> None:
    node = client.post("/api/v1/nodes", json={"metadata": {"name": "n1", "namespace": "x"}})
    assert "namespace" not in node.json()["metadata"]
    client.post("/api/v1/namespaces", json={"metadata": {"name": "other"}})
    client.post("/api/v1/namespaces/other/configmaps", json={"metadata": {"name": "o"}})
    client.post(CMS, json={"metadata": {"name": "d"}})
    everywhere = client.get("/api/v1/configmaps").json()["items"]
    assert {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere} == {
        ("other", "o"),
        ("default", "d"),
    }


def test_invalid_body_names_the_field(client: httpx.Client) -> None:
    answer = client.post(CMS, json={"metadata": {"name": "Not_Valid"}})
    assert answer.status_code == 422
    body = answer.json()
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_discovery_legacy_and_aggregated(client: httpx.Client) -> None:
    core = client.get("/api/v1").json()
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert pods["namespaced"] and "po" in pods["shortNames"] and "watch" in pods["verbs"]
    assert {"pods/status", "pods/log", "pods/binding"} <= {r["name"] for r in core["resources"]}
    groups = client.get("/apis").json()
    assert "coordination.k8s.io" in {g["name"] for g in groups["groups"]}
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    aggregated = client.get("/apis", headers={"Accept": accept})
    assert aggregated.headers["content-type"].startswith("application/json;g=apidiscovery.k8s.io")
    assert aggregated.json()["kind"] == "APIGroupDiscoveryList"
    assert client.get("/version").json()["major"] == "1"
    assert client.get("/apis/nope.example.com/v1").status_code == 404
