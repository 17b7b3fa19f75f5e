"""What only the SQLite store has: transactions, schema migration, sharing across processes.

The `Store` contract itself is `test_contract.py`, run against every implementation.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from tests.unit.store.test_contract import job
from trainguard import constants as c
from trainguard.errors import CorruptRecord, LeaseLostError, StoreError
from trainguard.spec.faults import FaultSpec
from trainguard.store import (
    EventRecord,
    Lease,
    NodeRecord,
    SqliteStore,
)
from trainguard.store.records import FaultOutcome


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "state.db")


def test_transaction_rolls_back_everything(store: SqliteStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.create_job(job("a"))
        store.save_node(NodeRecord("node-0"))
        raise RuntimeError("boom")
    assert store.list_jobs() == [] and store.list_nodes() == []


def test_a_fenced_store_refuses_writes_once_its_holder_lost_the_lease(
    store: SqliteStore, tmp_path: Path
) -> None:
    assert store.take_lease(Lease("a", 1, 100.0), expect=None) is not None
    store.fence("a")
    store.save_node(NodeRecord("node-0"))
    other = SqliteStore(tmp_path / "state.db")
    assert other.take_lease(Lease("b", 2, 110.0), expect=("a", 0)) is not None
    with pytest.raises(LeaseLostError, match="lost its lease to b"):
        store.save_node(NodeRecord("node-1"))
    with pytest.raises(LeaseLostError), store.transaction():
        store.create_job(job("a"))
    assert [n.name for n in other.list_nodes()] == ["node-0"] and other.list_jobs() == []
    store.release_lease("a")
    assert other.current_lease() is not None, "releasing a lease we lost leaves it alone"


def test_a_store_written_before_fault_outcomes_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE faults (id INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL,"
        " job TEXT NOT NULL, spec TEXT NOT NULL, created_at REAL NOT NULL, done_at REAL,"
        " result TEXT);"
        "INSERT INTO faults (namespace,job,spec,created_at,done_at,result) VALUES"
        " ('default','a','kill-worker',1,2,'sent SIGKILL'),"
        " ('default','a','kill-worker',1,2,'not injected: no running worker has rank 9'),"
        " ('default','a','kill-worker',1,2,'job deleted'),"
        " ('default','a','kill-worker',1,NULL,NULL);"
    )
    old.commit()
    old.close()
    store = SqliteStore(path)
    assert [r.outcome for r in store.list_fault_requests("default", "a")] == [
        FaultOutcome.INJECTED,
        FaultOutcome.NOT_INJECTED,
        FaultOutcome.NOT_INJECTED,
        FaultOutcome.PENDING,
    ]
    SqliteStore(path)  # a second opening finds the column in place


def test_text_fault_specs_of_an_older_store_become_typed_json(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(  # the schema and the KIND:k=v text rows written before specs were JSON
        "CREATE TABLE faults (id INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL,"
        " job TEXT NOT NULL, spec TEXT NOT NULL, created_at REAL NOT NULL, done_at REAL,"
        " result TEXT, outcome TEXT NOT NULL DEFAULT 'pending');"
        "INSERT INTO faults (namespace,job,spec,created_at) VALUES"
        " ('default','a','kill-worker:rank=1,after=10,at-step=40',1),"
        " ('default','a','node-unhealthy:rank=0,after=0,node=node-2,"
        "status=UnschedulablePendingReplacement',1),"
        " ('default','a','explode:rank=1',1);"
    )
    old.commit()
    old.close()
    store = SqliteStore(path)
    assert [r.spec for r in store.list_fault_requests("default", "a")] == [
        FaultSpec("kill-worker", rank=1, after=10.0, at_step=40),
        FaultSpec("node-unhealthy", node="node-2", status=c.HEALTH_PENDING_REPLACEMENT),
    ], "the unreadable row is dropped, the rest parsed once"
    raw = sqlite3.connect(path).execute("SELECT spec FROM faults ORDER BY id").fetchall()
    assert all(json.loads(spec)["kind"] for (spec,) in raw)
    assert [r.training_at for r in SqliteStore(path).pending_fault_requests()] == [None, None]


def test_a_hand_broken_fault_spec_names_its_request(store: SqliteStore, tmp_path: Path) -> None:
    request = store.add_fault_request("default", "a", FaultSpec("kill-worker"), 1.0)
    with sqlite3.connect(tmp_path / "state.db") as raw:
        raw.execute("UPDATE faults SET spec=? WHERE id=?", ('{"kind": "explode"}', request))
    with pytest.raises(CorruptRecord, match=f"fault request {request}: stored spec is invalid"):
        store.get_fault_request(request)


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


def test_a_database_locked_past_the_timeout_is_a_store_error_and_nothing_is_half_written(
    tmp_path: Path,
) -> None:
    """SQLite's exceptions stop at the store: callers (the controller) see `StoreError`, a
    temporary `TrainguardError` they retry, never ``sqlite3.OperationalError``."""
    path = tmp_path / "state.db"
    store = SqliteStore(path, timeout=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with pytest.raises(StoreError, match="locked") as caught:
            store.create_job(job("held"))
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        assert caught.value.temporary
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.find_job("default", "held") is None
    store.create_job(job("held"))  # the lock is gone: the same write goes through
    assert store.get_job("default", "held").name == "held"
