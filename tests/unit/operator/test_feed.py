"""Watch events name the jobs they concern: the job itself, a pod's job, the jobs on a node."""

from __future__ import annotations

from typing import Any

from trainguard.operator.feed import CacheFeed, Listener


class ListCache:
    """A cache holding a list; the test fires its events."""

    def __init__(self, objects: list[dict[str, Any]] | None = None, synced: bool = True) -> None:
        self.objects, self.is_synced = objects or [], synced
        self.listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def items(self) -> list[dict[str, Any]]:
        return list(self.objects)

    def wait_synced(self, timeout: float | None = None) -> bool:
        del timeout
        return self.is_synced

    def fire(self, obj: dict[str, Any]) -> None:
        for listener in self.listeners:
            listener("MODIFIED", obj)


def pod(name: str, job: str | None, node: str, namespace: str = "team") -> dict[str, Any]:
    labels = {} if job is None else {"HPJob": job}
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"nodeName": node},
    }


def test_events_map_to_the_jobs_they_concern() -> None:
    pods = ListCache([pod("a-0", "a", "n1"), pod("b-0", "b", "n1"), pod("c-0", "c", "n2")])
    jobs, nodes = ListCache(), ListCache()
    feed = CacheFeed(jobs=jobs, pods=pods, nodes=nodes)
    seen: list[str] = []
    feed.subscribe(seen.append)

    jobs.fire({"metadata": {"name": "a", "namespace": "team"}})
    pods.fire(pod("c-0", "c", "n2"))
    pods.fire(pod("stray", None, "n2"))  # not a job's pod: nothing
    nodes.fire({"metadata": {"name": "n1"}})
    assert seen[:2] == ["team/a", "team/c"]
    assert sorted(seen[2:]) == ["team/a", "team/b"]


def test_synced_only_when_every_cache_listed() -> None:
    late = ListCache(synced=False)
    feed = CacheFeed(jobs=ListCache(), pods=ListCache(), nodes=ListCache(), others=[late])
    assert not feed.synced()
    late.is_synced = True
    assert feed.synced()
