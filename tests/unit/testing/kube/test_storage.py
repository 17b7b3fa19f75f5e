"""Storage: one revision counter, deep copies, bounded history and compaction."""

from __future__ import annotations

import pytest

from trainguard.testing.kube.apierrors import ApiError
from trainguard.testing.kube.objects import ObjectStore, WatchEvent

CM = ("", "v1", "configmaps")
SECRETS = ("", "v1", "secrets")


def _cm(name: str, **data: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "ns"}, "data": dict(data)}


def test_every_write_takes_the_next_global_revision() -> None:
    store = ObjectStore()
    first = store.create(CM, _cm("a"))
    second = store.create(SECRETS, {"metadata": {"name": "s", "namespace": "ns"}})
    assert (
        int(second["metadata"]["resourceVersion"]) == int(first["metadata"]["resourceVersion"]) + 1
    )
    assert store.list(CM)[1] == store.revision == 2
    assert first["metadata"]["uid"] != second["metadata"]["uid"]


def test_objects_are_copied_in_and_out() -> None:
    store = ObjectStore()
    body = _cm("a", x="1")
    created = store.create(CM, body)
    created["data"]["x"] = "changed"
    body["data"]["x"] = "changed too"
    assert store.get(CM, "ns", "a")["data"] == {"x": "1"}


def test_update_with_stale_version_conflicts() -> None:
    store = ObjectStore()
    created = store.create(CM, _cm("a"))
    store.update(CM, _cm("a", x="1"), expected_version=created["metadata"]["resourceVersion"])
    with pytest.raises(ApiError) as caught:
        store.update(CM, _cm("a", x="2"), expected_version=created["metadata"]["resourceVersion"])
    assert (caught.value.code, caught.value.reason) == (409, "Conflict")


def test_subscribe_replays_history_after_a_revision() -> None:
    store = ObjectStore()
    start = store.create(CM, _cm("a"))["metadata"]["resourceVersion"]
    store.update(CM, _cm("a", x="1"))
    store.remove(CM, "ns", "a")
    seen: list[WatchEvent] = []
    replay, unsubscribe = store.subscribe(CM, seen.append, since=int(start))
    assert [e.type for e in replay] == ["MODIFIED", "DELETED"]
    store.create(CM, _cm("b"))
    unsubscribe()
    store.create(CM, _cm("c"))
    assert [e.object["metadata"]["name"] for e in seen] == ["b"]


def test_history_window_and_compaction_answer_410() -> None:
    store = ObjectStore(history_limit=2)
    for name in "abc":
        store.create(CM, _cm(name))
    with pytest.raises(ApiError) as caught:
        store.subscribe(CM, lambda e: None, since=0)
    assert (caught.value.code, caught.value.reason) == (410, "Expired")
    store.subscribe(CM, lambda e: None, since=1)[1]()
    store.compact()
    with pytest.raises(ApiError):
        store.subscribe(CM, lambda e: None, since=2)
    assert store.subscribe(CM, lambda e: None, since=store.revision)[0] == []
