"""The SQLite store: CRUD, optimistic concurrency, atomic transactions, sharing across processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from trainguard.errors import ConflictError, NotFoundError
from trainguard.store import (
    EventRecord,
    JobRecord,
    Lease,
    NodeRecord,
    PodRecord,
    RestartRecord,
    SqliteStore,
)


def job(name: str = "train") -> JobRecord:
    return JobRecord(
        "default",
        name,
        f"uid-{name}",
        {"kind": "HyperPodPyTorchJob"},
        {"a": 1},
        {"phase": "Pending"},
        1.0,
    )


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "state.db")


def test_job_roundtrip_and_conflicts(store: SqliteStore) -> None:
    store.create_job(job())
    with pytest.raises(ConflictError):
        store.create_job(job())
    loaded = store.get_job("default", "train")
    assert (loaded.manifest, loaded.status, loaded.state, loaded.version) == (
        {"kind": "HyperPodPyTorchJob"},
        {"a": 1},
        {"phase": "Pending"},
        0,
    )
    loaded.status = {"a": 2}
    store.save_job(loaded)
    assert store.get_job("default", "train").status == {"a": 2}
    stale = job()
    stale.version = 0
    with pytest.raises(ConflictError):
        store.save_job(stale)


def test_deletion_request_beats_a_stale_status_write(store: SqliteStore) -> None:
    store.create_job(job())
    read = store.get_job("default", "train")
    store.request_deletion("default", "train")
    with pytest.raises(ConflictError):
        store.save_job(read)
    assert store.get_job("default", "train").deletion_requested


def test_remove_job_takes_pods_events_and_restarts(store: SqliteStore) -> None:
    store.create_job(job())
    store.save_pod(PodRecord("default", "train-pods-0", "train", "node-0", "pods", 0))
    store.add_events([EventRecord("Job", "default", "train", "Normal", "Created", "x", 1.0)])
    store.add_restart(
        RestartRecord("default", "train", 2.0, "PLR", "WorkerCrash", ("p",), (1,), ("n",))
    )
    assert store.list_restarts("default", "train")[0].faulty_ranks == (1,)
    store.remove_job("default", "train")
    assert store.list_pods("default", "train") == []
    assert store.list_events(kind="Job") == []
    assert store.list_restarts("default", "train") == []
    with pytest.raises(NotFoundError):
        store.get_job("default", "train")


def test_patch_node_sets_and_deletes_keys(store: SqliteStore) -> None:
    store.save_node(NodeRecord("node-0", {"a": "1", "b": "2"}, {"x": "y"}))
    node = store.patch_node("node-0", labels={"a": "3", "b": None}, annotations={"z": "w"})
    assert node.labels == {"a": "3"} and node.annotations == {"x": "y", "z": "w"}
    with pytest.raises(NotFoundError):
        store.patch_node("node-9", labels={"a": "1"})


def test_transaction_rolls_back_everything(store: SqliteStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.create_job(job("a"))
        store.save_node(NodeRecord("node-0"))
        raise RuntimeError("boom")
    assert store.list_jobs() == [] and store.list_nodes() == []


def test_lease_is_exclusive_until_stale(store: SqliteStore) -> None:
    assert store.take_lease(Lease("a", 1, 100.0), stale_after=10, now=100.0)
    assert not store.take_lease(Lease("b", 2, 105.0), stale_after=10, now=105.0)
    assert store.take_lease(Lease("a", 1, 106.0), stale_after=10, now=106.0)
    assert store.take_lease(Lease("b", 2, 120.0), stale_after=10, now=120.0)
    lease = store.current_lease()
    assert lease is not None and lease.holder == "b"


def test_fault_requests_queue(store: SqliteStore) -> None:
    first = store.add_fault_request("default", "train", "kill-worker:rank=0,after=0", 1.0)
    assert [r.id for r in store.pending_fault_requests()] == [first]
    store.complete_fault_request(first, result="done", now=2.0)
    assert store.pending_fault_requests() == []
    assert store.get_fault_request(first).result == "done"


def _writer(path: str, index: int) -> None:
    other = SqliteStore(path)
    for n in range(50):
        other.add_events(
            [EventRecord("Job", "default", "train", "Normal", "W", f"{index}-{n}", float(n))]
        )


def test_concurrent_writers_in_other_processes_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    SqliteStore(path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, i)) for i in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert all(w.exitcode == 0 for w in workers)
    assert len(SqliteStore(path).list_events()) == 150
