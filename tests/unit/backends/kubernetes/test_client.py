"""`KubeClient` without a server: retries where they are safe, errors mapped and named.

An httpx mock transport answers each request from a script, so the retry policy is checked
request by request (429 with Retry-After, 5xx, refused and dropped connections).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import pytest
from lightkube.config.kubeconfig import KubeConfig

from trainguard.backends.kubernetes.client import (
    NODES,
    KubeApiError,
    KubeClient,
    ResourceExpired,
)
from trainguard.errors import ConflictError, NotFoundError

Answer = Callable[[httpx2.Request], httpx2.Response]
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "resourceVersion": "3"}}


def status(code: int, headers: dict[str, str] | None = None) -> httpx2.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "message": f"said {code}"}  # fmt: skip
    return httpx2.Response(code, json=body, headers=headers)


def client(answers: list[Answer | httpx2.Response], sleeps: list[float]) -> KubeClient:
    script = iter(answers)

    def handle(request: httpx2.Request) -> httpx2.Response:
        answer = next(script)
        return answer(request) if callable(answer) else answer

    config = KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )
    return KubeClient(config, sleep=sleeps.append, transport=httpx2.MockTransport(handle))


def refused(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("refused", request=request)


def dropped(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.RemoteProtocolError("peer closed connection", request=request)


def test_429_is_retried_after_its_retry_after() -> None:
    sleeps: list[float] = []
    kube = client([status(429, {"Retry-After": "1"}), httpx2.Response(200, json=NODE)], sleeps)
    assert kube.get(NODES, "n")["metadata"]["name"] == "n"
    assert sleeps == [1.0]


def test_5xx_and_dropped_connections_are_retried_for_idempotent_calls() -> None:
    sleeps: list[float] = []
    kube = client([status(500), dropped, refused, httpx2.Response(200, json=NODE)], sleeps)
    assert kube.get(NODES, "n")["metadata"]["resourceVersion"] == "3"
    assert sleeps == [0.05, 0.1, 0.2], "backoff doubles"


def test_a_create_is_not_repeated_once_it_may_have_landed() -> None:
    sleeps: list[float] = []
    kube = client([refused, dropped], sleeps)
    with pytest.raises(KubeApiError, match="create Node n") as caught:
        kube.create(NODES, NODE)
    assert caught.value.temporary and sleeps == [0.05], "refused: retried; dropped: not"
    kube = client([status(500)], sleeps)
    with pytest.raises(KubeApiError):
        kube.create(NODES, NODE)


def test_errors_are_mapped_and_name_the_object() -> None:
    kube = client([status(404), status(409), status(410), status(422)], [])
    with pytest.raises(NotFoundError, match="get Node n: 404"):
        kube.get(NODES, "n")
    with pytest.raises(ConflictError, match="update Node n: 409"):
        kube.replace(NODES, NODE)
    with pytest.raises(ResourceExpired):
        kube.list(NODES)
    with pytest.raises(KubeApiError, match="patch Node n: 422") as caught:
        kube.patch(NODES, "n", {"metadata": {"labels": {"a": "1"}}})
    assert not caught.value.temporary


def test_retries_give_up_after_the_policy_attempts() -> None:
    sleeps: list[float] = []
    kube = client([status(503)] * 6, sleeps)
    with pytest.raises(KubeApiError, match="503"):
        kube.get(NODES, "n")
    assert len(sleeps) == 5


def test_a_merge_patch_is_sent_as_one() -> None:
    seen: list[httpx2.Request] = []

    def record(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json=NODE)

    kube = client([record], [])
    kube.patch(NODES, "n", {"metadata": {"labels": {"a": None}}})
    assert seen[0].headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(seen[0].content) == {"metadata": {"labels": {"a": None}}}


def watch_lines(*events: dict[str, object]) -> httpx2.Response:
    body = "".join(json.dumps(e) + "\n" for e in events)
    return httpx2.Response(200, content=body.encode(), headers={"Content-Type": "application/json"})


def test_a_watch_yields_raw_objects_and_bookmarks_as_sent() -> None:
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        bookmark = {"kind": "Event", "metadata": {"resourceVersion": "9"}}
        return watch_lines(
            {"type": "ADDED", "object": NODE}, {"type": "BOOKMARK", "object": bookmark}
        )

    kube = client([answer], [])
    events = list(kube.watch(NODES, resource_version="2", labels={"a": None}, timeout=5))
    assert [(kind, obj["metadata"]["resourceVersion"]) for kind, obj in events] == [
        ("ADDED", "3"), ("BOOKMARK", "9"),
    ]  # fmt: skip
    params = seen[0].url.params
    assert (params["watch"], params["resourceVersion"], params["allowWatchBookmarks"]) == (
        "true", "2", "true",
    )  # fmt: skip
    assert (params["labelSelector"], params["timeoutSeconds"]) == ("a", "5")


def test_a_watch_error_event_raises_410_as_resource_expired() -> None:
    gone = {"kind": "Status", "code": 410, "message": "too old resource version: 2 (5)"}
    kube = client([watch_lines({"type": "ERROR", "object": gone})], [])
    with pytest.raises(ResourceExpired, match="watch Node: 410 too old"):
        list(kube.watch(NODES, resource_version="2"))
    kube = client([status(410)], [])
    with pytest.raises(ResourceExpired):
        list(kube.watch(NODES, resource_version="2"))
