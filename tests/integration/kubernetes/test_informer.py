"""The list+watch cache (`cache.Informer`) against the fake API server: it follows changes,
resumes a dropped watch from the last resourceVersion without listing again, and lists again
(reporting what it missed, deletions included) when the server answers 410 Gone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kubestore import KubeHarness, kube_server_with_crd
from trainguard.backends.kubernetes.cache import Informer
from trainguard.backends.kubernetes.client import CONFIGMAPS, EVENTS, KubeClient
from trainguard.testing.kube import DROP, KubeApiServer

LABEL = {"test": "informer"}
WAIT = 10.0


@pytest.fixture(scope="module")
def server() -> Iterator[KubeApiServer]:
    with kube_server_with_crd() as started:
        yield started


@pytest.fixture
def client(server: KubeApiServer, tmp_path: Path) -> Iterator[KubeClient]:
    harness = KubeHarness(server, tmp_path)
    made = harness.client()
    yield made
    made.close()


def configmap(name: str, value: str = "1") -> dict[str, Any]:
    meta = {"name": name, "namespace": "default", "labels": LABEL}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": value}}


def started(
    client: KubeClient, seen: list[tuple[str, str]] | None = None, *, watch_timeout: int = 60
) -> Informer:
    informer = Informer(
        client, CONFIGMAPS, namespace="default", labels=LABEL, watch_timeout=watch_timeout,
        max_backoff=0.1,
    )  # fmt: skip
    if seen is not None:
        informer.add_listener(lambda kind, obj: seen.append((kind, obj["metadata"]["name"])))
    informer.start()
    assert informer.wait_synced(WAIT)
    return informer


def holds(informer: Informer, name: str, value: str | None) -> bool:
    """Whether the cache holds ConfigMap ``name`` with ``value`` (None: not at all)."""
    obj = informer.get("default", name)
    return (obj is None) if value is None else (obj is not None and obj["data"]["v"] == value)


def test_changes_reach_the_cache_and_the_listeners(client: KubeClient) -> None:
    client.create(CONFIGMAPS, configmap("before"))
    seen: list[tuple[str, str]] = []
    informer = started(client, seen)
    try:
        assert holds(informer, "before", "1"), "listed"
        client.create(CONFIGMAPS, configmap("a"))
        client.patch(CONFIGMAPS, "a", {"data": {"v": "2"}}, namespace="default")
        client.delete(CONFIGMAPS, "before", namespace="default")
        assert informer.wait_for(lambda i: holds(i, "a", "2") and holds(i, "before", None), WAIT)
        assert seen == [("ADDED", "before"), ("ADDED", "a"), ("MODIFIED", "a"),
                        ("DELETED", "before")]  # fmt: skip
        assert informer.relists == 1
    finally:
        assert informer.stop(WAIT)


def test_a_dropped_watch_resumes_from_the_last_version_without_listing(
    server: KubeApiServer, client: KubeClient
) -> None:
    informer = started(client, watch_timeout=1)  # the server ends each watch after 1 s
    try:
        server.faults.inject(verb="watch", resource="configmaps", status=DROP, times=3)
        assert informer.wait_for(lambda i: i.resumes >= 1, WAIT), "a watch request was dropped"
        client.create(CONFIGMAPS, configmap("missed"))
        assert informer.wait_for(lambda i: holds(i, "missed", "1"), WAIT)
        assert informer.relists == 1, "resumed from its resourceVersion, not listed again"
    finally:
        assert informer.stop(WAIT)


def test_410_gone_lists_again_and_reports_what_was_missed(
    server: KubeApiServer, client: KubeClient
) -> None:
    seen: list[tuple[str, str]] = []
    informer = started(client, seen, watch_timeout=1)
    try:
        client.create(CONFIGMAPS, configmap("kept"))
        client.create(CONFIGMAPS, configmap("doomed"))
        assert informer.wait_for(lambda i: holds(i, "doomed", "1"), WAIT)
        server.faults.inject(verb="watch", resource="configmaps", status=DROP, times=10_000)
        assert informer.wait_for(lambda i: i.resumes >= 1, WAIT), "cut off"
        client.delete(CONFIGMAPS, "doomed", namespace="default")
        client.patch(CONFIGMAPS, "kept", {"data": {"v": "2"}}, namespace="default")
        server.objects.compact()  # the history the informer would resume from is gone
        server.faults.clear()
        assert informer.wait_for(lambda i: holds(i, "doomed", None) and holds(i, "kept", "2"), WAIT)
        assert informer.relists == 2
        assert ("DELETED", "doomed") in seen and ("MODIFIED", "kept") in seen
    finally:
        assert informer.stop(WAIT)


def test_an_injected_410_on_a_watch_lists_again(server: KubeApiServer, client: KubeClient) -> None:
    informer = started(client, watch_timeout=1)
    try:
        server.faults.inject(verb="watch", resource="configmaps", status=410)
        assert informer.wait_for(lambda i: i.relists == 2, WAIT)
        client.create(CONFIGMAPS, configmap("after"))
        assert informer.wait_for(lambda i: holds(i, "after", "1"), WAIT)
    finally:
        assert informer.stop(WAIT)


def test_bookmarks_keep_a_watch_of_events_alive(client: KubeClient) -> None:
    """A bookmark carries nothing but a resourceVersion: it must not be decoded as an Event
    (whose model requires ``eventTime``) — the watch would fail at every bookmark."""
    informer = Informer(client, EVENTS, namespace="default", max_backoff=0.1)
    informer.start()
    try:
        assert informer.wait_synced(WAIT)
        bookmarked = informer.wait_for(lambda _: False, 1.5)  # the fake bookmarks every 0.5 s
        assert not bookmarked and informer.resumes == 0
        event = {
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e1", "namespace": "default"},
            "eventTime": "2026-01-01T00:00:00.000000Z", "reason": "R", "action": "R",
            "reportingController": "c", "reportingInstance": "i", "type": "Normal",
        }  # fmt: skip
        client.create(EVENTS, event)
        assert informer.wait_for(lambda i: i.get("default", "e1") is not None, WAIT)
        assert (informer.resumes, informer.relists) == (0, 1)
    finally:
        assert informer.stop(WAIT)
