"""Deletion over HTTP: finalizers, graceful pod deletion, binding, GC, preconditions."""

from __future__ import annotations

from typing import Any

import httpx

CMS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}


def _owned_by(owner: dict[str, Any]) -> list[dict[str, Any]]:
    meta = owner["metadata"]
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": meta["name"], "uid": meta["uid"]}
    return [{**ref, "controller": True}]


def test_finalizer_keeps_object_until_removed(client: httpx.Client) -> None:
    client.post(CMS, json={"metadata": {"name": "f", "finalizers": ["trainguard.io/cleanup"]}})
    marked = client.delete(f"{CMS}/f").json()
    assert marked["metadata"]["deletionTimestamp"]
    assert client.get(f"{CMS}/f").status_code == 200
    client.patch(f"{CMS}/f", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert client.get(f"{CMS}/f").status_code == 404


def test_bound_pod_is_deleted_gracefully_unbound_at_once(client: httpx.Client) -> None:
    client.post(PODS, json={"metadata": {"name": "unbound"}, "spec": {"containers": []}})
    assert client.delete(f"{PODS}/unbound").status_code == 200
    assert client.get(f"{PODS}/unbound").status_code == 404
    client.post(PODS, json={"metadata": {"name": "bound"}, "spec": {"containers": []}})
    bind = {"target": {"kind": "Node", "name": "n1"}}
    assert client.post(f"{PODS}/bound/binding", json=bind).status_code == 201
    again = client.post(f"{PODS}/bound/binding", json=bind)
    assert (again.status_code, again.json()["reason"]) == (409, "Conflict")
    marked = client.delete(f"{PODS}/bound").json()
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    assert client.get(f"{PODS}/bound").json()["spec"]["nodeName"] == "n1"
    client.request("DELETE", f"{PODS}/bound", json={"gracePeriodSeconds": 0})
    assert client.get(f"{PODS}/bound").status_code == 404


def test_background_gc_deletes_dependents_orphan_keeps_them(client: httpx.Client) -> None:
    owner = client.post(CMS, json={"metadata": {"name": "owner"}}).json()
    refs = _owned_by(owner)
    client.post(CMS, json={"metadata": {"name": "child", "ownerReferences": refs}})
    client.post(PODS, json={"metadata": {"name": "pod", "ownerReferences": refs}, "spec": {}})
    client.delete(f"{CMS}/owner")
    assert client.get(f"{CMS}/child").status_code == 404
    assert client.get(f"{PODS}/pod").status_code == 404

    keeper = client.post(CMS, json={"metadata": {"name": "keeper"}}).json()
    client.post(CMS, json={"metadata": {"name": "kept", "ownerReferences": _owned_by(keeper)}})
    client.request("DELETE", f"{CMS}/keeper", json={"propagationPolicy": "Orphan"})
    assert client.get(f"{CMS}/kept").json()["metadata"]["ownerReferences"] == []


def test_foreground_waits_for_dependents(client: httpx.Client) -> None:
    owner = client.post(CMS, json={"metadata": {"name": "owner"}}).json()
    child = {"name": "child", "ownerReferences": _owned_by(owner), "finalizers": ["x/hold"]}
    client.post(CMS, json={"metadata": child})
    client.request("DELETE", f"{CMS}/owner", json={"propagationPolicy": "Foreground"})
    waiting = client.get(f"{CMS}/owner").json()
    assert "foregroundDeletion" in waiting["metadata"]["finalizers"]
    client.patch(f"{CMS}/child", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert client.get(f"{CMS}/child").status_code == 404
    assert client.get(f"{CMS}/owner").status_code == 404


def test_delete_preconditions(client: httpx.Client) -> None:
    created = client.post(CMS, json={"metadata": {"name": "p"}}).json()
    wrong = client.request("DELETE", f"{CMS}/p", json={"preconditions": {"uid": "nope"}})
    assert wrong.status_code == 409
    right = {"preconditions": {"uid": created["metadata"]["uid"]}}
    assert client.request("DELETE", f"{CMS}/p", json=right).status_code == 200
