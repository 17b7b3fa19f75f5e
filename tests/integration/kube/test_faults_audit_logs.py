"""Injected faults answer like the real server, the audit log speaks RBAC, pods/log streams."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from trainguard.testing.kube import DROP, AuditEntry, KubeApiServer

CMS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


def test_injected_faults(server: KubeApiServer, client: httpx.Client) -> None:
    server.faults.inject(verb="list", resource="configmaps", status=429, times=2)
    server.faults.inject(verb="create", resource="configmaps", status=500)
    for _ in range(2):
        throttled = client.get(CMS)
        assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "1")
        assert throttled.json()["reason"] == "TooManyRequests"
    assert client.get(CMS).status_code == 200
    assert client.post(CMS, json={"metadata": {"name": "c"}}).json()["code"] == 500
    server.faults.inject(verb="get", resource="configmaps", status=DROP)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{CMS}/c")
    assert client.post(CMS, json={"metadata": {"name": "c"}}).status_code == 201
    with pytest.raises(ValueError, match="status"):
        server.faults.inject(status=418)


def test_audit_records_rbac_verbs(server: KubeApiServer, client: httpx.Client) -> None:
    client.post(PODS, json={"metadata": {"name": "p"}, "spec": {}})
    client.get(PODS, params={"watch": "1", "timeoutSeconds": "0"})
    client.put(f"{PODS}/p/status", json=client.get(f"{PODS}/p").json())
    client.delete(PODS)
    entries = server.audit.entries()
    agent = f"python-httpx/{httpx.__version__}"
    assert entries == [
        AuditEntry("create", "", "pods", "", "default", agent),
        AuditEntry("watch", "", "pods", "", "default", agent),
        AuditEntry("get", "", "pods", "", "default", agent),
        AuditEntry("update", "", "pods", "status", "default", agent),
        AuditEntry("deletecollection", "", "pods", "", "default", agent),
    ]
    assert ("", "pods/status", "update") in server.audit.permissions()
    assert server.audit.permissions(user_agent="python-httpx/") == server.audit.permissions()
    assert server.audit.permissions(user_agent="kubectl/") == set()


def test_pod_logs_from_a_registered_source(server: KubeApiServer, client: httpx.Client) -> None:
    client.post(PODS, json={"metadata": {"name": "p"}, "spec": {}})
    assert client.get(f"{PODS}/p/log").status_code == 404
    asked: list[tuple[str, str, str | None, int | None, bool]] = []

    def source(
        ns: str, pod: str, container: str | None, tail: int | None, follow: bool
    ) -> Iterator[bytes]:
        if pod != "p":
            raise LookupError(pod)
        asked.append((ns, pod, container, tail, follow))
        return iter([b"line 1\n", b"line 2\n"])

    server.register_log_source(source)
    answer = client.get(f"{PODS}/p/log", params={"container": "main", "tailLines": "2"})
    assert answer.text == "line 1\nline 2\n"
    assert asked == [("default", "p", "main", 2, False)]
    missing = client.get(f"{PODS}/nope/log")
    assert (missing.status_code, missing.json()["message"]) == (404, 'pods "nope" not found')
