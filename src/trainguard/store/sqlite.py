"""SQLite implementation of the store: the embedded default (``$TRAINGUARD_HOME/state.db``).

Why SQLite: one file that several processes share safely (the controller, ``trainguard job``
commands, health agents), durable across a killed controller, and no server to run. WAL mode
lets readers work while the controller writes; ``busy_timeout`` makes concurrent writers wait
instead of failing. Every multi-row change runs in one ``BEGIN IMMEDIATE`` transaction
(`transaction`), which is how the controller writes a job's status once per step.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trainguard.errors import ConflictError, NotFoundError
from trainguard.store.records import (
    EventRecord,
    FaultRequest,
    JobRecord,
    Lease,
    NodeRecord,
    PodRecord,
    RestartRecord,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    namespace TEXT NOT NULL, name TEXT NOT NULL, uid TEXT NOT NULL,
    manifest TEXT NOT NULL, status TEXT NOT NULL, state TEXT NOT NULL,
    created_at REAL NOT NULL, finished_at REAL, deletion_requested INTEGER NOT NULL DEFAULT 0,
    source_dir TEXT, version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, name));
CREATE TABLE IF NOT EXISTS pods (
    namespace TEXT NOT NULL, name TEXT NOT NULL, job TEXT NOT NULL, node TEXT NOT NULL,
    replica_spec TEXT NOT NULL, node_rank INTEGER, spare INTEGER NOT NULL, attempt INTEGER NOT NULL,
    phase TEXT NOT NULL, host TEXT NOT NULL, port INTEGER, pid INTEGER, created_at REAL NOT NULL,
    labels TEXT NOT NULL, info TEXT NOT NULL,
    PRIMARY KEY (namespace, name));
CREATE INDEX IF NOT EXISTS pods_by_job ON pods (namespace, job);
CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY, labels TEXT NOT NULL, annotations TEXT NOT NULL,
    created_at REAL NOT NULL, info TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, namespace TEXT NOT NULL,
    name TEXT NOT NULL, type TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,
    time REAL NOT NULL, component TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_object ON events (kind, namespace, name);
CREATE TABLE IF NOT EXISTS restarts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL, job TEXT NOT NULL,
    time REAL NOT NULL, restart_type TEXT NOT NULL, reason TEXT NOT NULL,
    faulty_pods TEXT NOT NULL, faulty_ranks TEXT NOT NULL, faulty_nodes TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS restarts_by_job ON restarts (namespace, job);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL, job TEXT NOT NULL,
    spec TEXT NOT NULL, created_at REAL NOT NULL, done_at REAL, result TEXT);
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL, callback_url TEXT, metrics_url TEXT);
"""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=True)


class SqliteStore:
    """The job/pod/node/event store in one SQLite file.

    Args:
        path: the database file (created with its directory if missing).
        timeout: seconds a writer waits for another process's lock.
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one atomic transaction (re-entrant within a thread)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._conn.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self.transaction():
            return self._conn.execute(sql, args)

    # --- jobs ------------------------------------------------------------------------------

    def create_job(self, job: JobRecord) -> JobRecord:
        """Insert a new job; `ConflictError` if one of that name exists."""
        try:
            self._write(
                "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    job.namespace,
                    job.name,
                    job.uid,
                    _dumps(job.manifest),
                    _dumps(job.status),
                    _dumps(job.state),
                    job.created_at,
                    job.finished_at,
                    int(job.deletion_requested),
                    job.source_dir,
                    0,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"job {job.key} already exists") from exc
        job.version = 0
        return job

    def find_job(self, namespace: str, name: str) -> JobRecord | None:
        """The job, or None."""
        rows = self._query("SELECT * FROM jobs WHERE namespace=? AND name=?", (namespace, name))
        return _job(rows[0]) if rows else None

    def get_job(self, namespace: str, name: str) -> JobRecord:
        """The job; `NotFoundError` if missing."""
        job = self.find_job(namespace, name)
        if job is None:
            raise NotFoundError(f"job {namespace}/{name} not found")
        return job

    def list_jobs(self, namespace: str | None = None) -> list[JobRecord]:
        """All jobs (of one namespace when given), oldest first."""
        if namespace is None:
            rows = self._query("SELECT * FROM jobs ORDER BY created_at")
        else:
            rows = self._query(
                "SELECT * FROM jobs WHERE namespace=? ORDER BY created_at", (namespace,)
            )
        return [_job(r) for r in rows]

    def save_job(self, job: JobRecord) -> JobRecord:
        """Write status/state/finish time if nobody changed the job since it was read.

        Raises:
            ConflictError: the stored version differs (another writer won); re-read and retry.
            NotFoundError: the job was removed.
        """
        with self.transaction():
            cursor = self._conn.execute(
                "UPDATE jobs SET status=?, state=?, finished_at=?, version=version+1 "
                "WHERE namespace=? AND name=? AND version=?",
                (
                    _dumps(job.status),
                    _dumps(job.state),
                    job.finished_at,
                    job.namespace,
                    job.name,
                    job.version,
                ),
            )
            if cursor.rowcount == 0:
                if self.find_job(job.namespace, job.name) is None:
                    raise NotFoundError(f"job {job.key} not found")
                raise ConflictError(f"job {job.key} changed concurrently")
        job.version += 1
        return job

    def request_deletion(self, namespace: str, name: str) -> None:
        """Mark a job for deletion; the controller tears it down."""
        cursor = self._write(
            "UPDATE jobs SET deletion_requested=1, version=version+1 WHERE namespace=? AND name=?",
            (namespace, name),
        )
        if cursor.rowcount == 0:
            raise NotFoundError(f"job {namespace}/{name} not found")

    def remove_job(self, namespace: str, name: str) -> None:
        """Delete a job with its pods, events, restarts and fault requests."""
        with self.transaction():
            for table, column in (
                ("jobs", "name"),
                ("pods", "job"),
                ("restarts", "job"),
                ("faults", "job"),
            ):
                self._conn.execute(
                    f"DELETE FROM {table} WHERE namespace=? AND {column}=?", (namespace, name)
                )
            self._conn.execute(
                "DELETE FROM events WHERE kind='Job' AND namespace=? AND name=?", (namespace, name)
            )

    # --- pods ------------------------------------------------------------------------------

    def save_pod(self, pod: PodRecord) -> None:
        """Insert or replace a pod."""
        self._write(
            "INSERT OR REPLACE INTO pods VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                pod.namespace,
                pod.name,
                pod.job,
                pod.node,
                pod.replica_spec,
                pod.node_rank,
                int(pod.spare),
                pod.attempt,
                pod.phase,
                pod.host,
                pod.port,
                pod.pid,
                pod.created_at,
                _dumps(pod.labels),
                _dumps(pod.info),
            ),
        )

    def list_pods(self, namespace: str | None = None, job: str | None = None) -> list[PodRecord]:
        """Pods, of one job when ``job`` is given, in creation order."""
        if job is not None:
            rows = self._query(
                "SELECT * FROM pods WHERE namespace=? AND job=? ORDER BY created_at, name",
                (namespace or "default", job),
            )
        else:
            rows = self._query("SELECT * FROM pods ORDER BY created_at, name")
        return [_pod(r) for r in rows]

    def remove_pod(self, namespace: str, name: str) -> None:
        """Forget a pod."""
        self._write("DELETE FROM pods WHERE namespace=? AND name=?", (namespace, name))

    # --- nodes -----------------------------------------------------------------------------

    def save_node(self, node: NodeRecord) -> None:
        """Insert or replace a node."""
        self._write(
            "INSERT OR REPLACE INTO nodes VALUES (?,?,?,?,?)",
            (
                node.name,
                _dumps(node.labels),
                _dumps(node.annotations),
                node.created_at,
                _dumps(node.info),
            ),
        )

    def find_node(self, name: str) -> NodeRecord | None:
        """The node, or None."""
        rows = self._query("SELECT * FROM nodes WHERE name=?", (name,))
        return _node(rows[0]) if rows else None

    def get_node(self, name: str) -> NodeRecord:
        """The node; `NotFoundError` if missing."""
        node = self.find_node(name)
        if node is None:
            raise NotFoundError(f"node {name} not found")
        return node

    def list_nodes(self) -> list[NodeRecord]:
        """All nodes, by name."""
        return [_node(r) for r in self._query("SELECT * FROM nodes ORDER BY length(name), name")]

    def patch_node(
        self,
        name: str,
        *,
        labels: Mapping[str, str | None] | None = None,
        annotations: Mapping[str, str | None] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> NodeRecord:
        """Set (or, with None, delete) labels/annotations/info keys of a node atomically."""
        with self.transaction():
            node = self.get_node(name)
            _apply(node.labels, labels or {})
            _apply(node.annotations, annotations or {})
            _apply(node.info, info or {})
            self.save_node(node)
        return node

    def remove_node(self, name: str) -> None:
        """Forget a node."""
        self._write("DELETE FROM nodes WHERE name=?", (name,))

    # --- events, restarts ------------------------------------------------------------------

    def add_events(self, events: list[EventRecord]) -> None:
        """Append events."""
        with self.transaction():
            self._conn.executemany(
                "INSERT INTO events (kind,namespace,name,type,reason,message,time,component) "
                "VALUES (?,?,?,?,?,?,?,?)",
                [
                    (e.kind, e.namespace, e.name, e.type, e.reason, e.message, e.time, e.component)
                    for e in events
                ],
            )

    def list_events(
        self, *, kind: str | None = None, namespace: str | None = None, name: str | None = None
    ) -> list[EventRecord]:
        """Events in time order, filtered by object when given."""
        clauses, args = [], []
        for column, value in (("kind", kind), ("namespace", namespace), ("name", name)):
            if value is not None:
                clauses.append(f"{column}=?")
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(f"SELECT * FROM events {where} ORDER BY id", tuple(args))
        return [
            EventRecord(
                r["kind"],
                r["namespace"],
                r["name"],
                r["type"],
                r["reason"],
                r["message"],
                r["time"],
                r["component"],
            )
            for r in rows
        ]

    def add_restart(self, restart: RestartRecord) -> None:
        """Record one restart."""
        self._write(
            "INSERT INTO restarts (namespace,job,time,restart_type,reason,faulty_pods,faulty_ranks,"
            "faulty_nodes) VALUES (?,?,?,?,?,?,?,?)",
            (
                restart.namespace,
                restart.job,
                restart.time,
                restart.restart_type,
                restart.reason,
                _dumps(list(restart.faulty_pods)),
                _dumps(list(restart.faulty_ranks)),
                _dumps(list(restart.faulty_nodes)),
            ),
        )

    def list_restarts(self, namespace: str, job: str) -> list[RestartRecord]:
        """Restarts of a job, oldest first."""
        rows = self._query(
            "SELECT * FROM restarts WHERE namespace=? AND job=? ORDER BY id", (namespace, job)
        )
        return [
            RestartRecord(
                r["namespace"],
                r["job"],
                r["time"],
                r["restart_type"],
                r["reason"],
                tuple(json.loads(r["faulty_pods"])),
                tuple(json.loads(r["faulty_ranks"])),
                tuple(json.loads(r["faulty_nodes"])),
            )
            for r in rows
        ]

    # --- fault requests --------------------------------------------------------------------

    def add_fault_request(self, namespace: str, job: str, spec: str, now: float) -> int:
        """Queue a fault for the controller to inject; returns its id."""
        cursor = self._write(
            "INSERT INTO faults (namespace,job,spec,created_at) VALUES (?,?,?,?)",
            (namespace, job, spec, now),
        )
        return int(cursor.lastrowid or 0)

    def pending_fault_requests(self) -> list[FaultRequest]:
        """Faults not injected yet, oldest first."""
        rows = self._query("SELECT * FROM faults WHERE done_at IS NULL ORDER BY id")
        return [_fault(r) for r in rows]

    def get_fault_request(self, request_id: int) -> FaultRequest:
        """One fault request; `NotFoundError` if missing."""
        rows = self._query("SELECT * FROM faults WHERE id=?", (request_id,))
        if not rows:
            raise NotFoundError(f"fault request {request_id} not found")
        return _fault(rows[0])

    def complete_fault_request(self, request_id: int, *, result: str, now: float) -> None:
        """Mark a fault request done with what happened."""
        self._write("UPDATE faults SET done_at=?, result=? WHERE id=?", (now, result, request_id))

    # --- lease -----------------------------------------------------------------------------

    def current_lease(self) -> Lease | None:
        """The controller lease, if any."""
        rows = self._query("SELECT * FROM lease WHERE id=1")
        if not rows:
            return None
        r = rows[0]
        return Lease(r["holder"], r["pid"], r["heartbeat"], r["callback_url"], r["metrics_url"])

    def take_lease(self, lease: Lease, *, stale_after: float, now: float) -> bool:
        """Take or renew the lease unless another holder renewed it within ``stale_after``."""
        with self.transaction():
            current = self.current_lease()
            if current and current.holder != lease.holder and now - current.heartbeat < stale_after:
                return False
            self._conn.execute(
                "INSERT OR REPLACE INTO lease VALUES (1,?,?,?,?,?)",
                (lease.holder, lease.pid, lease.heartbeat, lease.callback_url, lease.metrics_url),
            )
        return True

    def release_lease(self, holder: str) -> None:
        """Drop the lease if ``holder`` has it."""
        self._write("DELETE FROM lease WHERE id=1 AND holder=?", (holder,))


def _apply(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value


def _job(r: sqlite3.Row) -> JobRecord:
    return JobRecord(
        namespace=r["namespace"],
        name=r["name"],
        uid=r["uid"],
        manifest=json.loads(r["manifest"]),
        status=json.loads(r["status"]),
        state=json.loads(r["state"]),
        created_at=r["created_at"],
        finished_at=r["finished_at"],
        deletion_requested=bool(r["deletion_requested"]),
        source_dir=r["source_dir"],
        version=r["version"],
    )


def _pod(r: sqlite3.Row) -> PodRecord:
    return PodRecord(
        namespace=r["namespace"],
        name=r["name"],
        job=r["job"],
        node=r["node"],
        replica_spec=r["replica_spec"],
        node_rank=r["node_rank"],
        spare=bool(r["spare"]),
        attempt=r["attempt"],
        phase=r["phase"],
        host=r["host"],
        port=r["port"],
        pid=r["pid"],
        created_at=r["created_at"],
        labels=json.loads(r["labels"]),
        info=json.loads(r["info"]),
    )


def _node(r: sqlite3.Row) -> NodeRecord:
    return NodeRecord(
        name=r["name"],
        labels=json.loads(r["labels"]),
        annotations=json.loads(r["annotations"]),
        created_at=r["created_at"],
        info=json.loads(r["info"]),
    )


def _fault(r: sqlite3.Row) -> FaultRequest:
    return FaultRequest(
        r["id"], r["namespace"], r["job"], r["spec"], r["created_at"], r["done_at"], r["result"]
    )
