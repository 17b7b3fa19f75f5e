"""SQLite implementation of the store: the embedded default (``$TRAINGUARD_HOME/state.db``).

Why SQLite: one file that several processes share safely (the controller, ``trainguard job``
commands, health agents), durable across a killed controller, and no server to run. This
module maps records to rows; the file itself — WAL, ``BEGIN IMMEDIATE`` transactions, the
controller lease that fences every write — is `trainguard.store.sqlite_db`. One transaction is
how `commit_step` lands a controller step (status, state, restart rows, pods, node patches,
events) all at once or not at all.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from trainguard.errors import ConflictError, NotFoundError
from trainguard.spec.faults import FaultSpec
from trainguard.store import sqlite_faults as fault_rows
from trainguard.store import sqlite_rows as rows
from trainguard.store.base import StepWrite
from trainguard.store.records import (
    EventRecord,
    FaultOutcome,
    FaultRequest,
    JobRecord,
    NodeRecord,
    PodRecord,
    RestartRecord,
)
from trainguard.store.sqlite_db import SqliteDatabase


class SqliteStore(SqliteDatabase):
    """The `Store` in one SQLite file (`SqliteDatabase`: the file, transactions, the lease).

    Args:
        path: the database file (created ``0600`` with its directory ``0700`` if missing).
        timeout: seconds a writer waits for another process's lock.
    """

    # --- jobs ------------------------------------------------------------------------------

    def create_job(
        self,
        job: JobRecord,
        *,
        faults: Sequence[FaultSpec] = (),
        events: Sequence[EventRecord] = (),
    ) -> JobRecord:
        """Insert a new job with its fault requests and events; `ConflictError` if one of that
        name exists."""
        status, state = rows.status_json(job.status), rows.state_json(job.state)
        with self.transaction():
            try:
                self._conn.execute(
                    "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (job.namespace, job.name, job.uid, rows.dumps(job.manifest), status, state,
                     job.created_at, job.finished_at, int(job.deletion_requested),
                     job.source_dir, 0),
                )  # fmt: skip
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"job {job.key} already exists") from exc
            for spec in faults:
                self.add_fault_request(job.namespace, job.name, spec, job.created_at)
            self.add_events(list(events))
        job.version, job.loaded = 0, rows.Loaded(status, state)
        return job

    def find_job(self, namespace: str, name: str) -> JobRecord | None:
        """The job (with its restart history), or None."""
        with self._lock:
            found = self._query(
                "SELECT * FROM jobs WHERE namespace=? AND name=?", (namespace, name)
            )
            restarts = self.list_restarts(namespace, name) if found else []
        return self._parser.job(found[0], restarts) if found else None

    def get_job(self, namespace: str, name: str) -> JobRecord:
        """The job; `NotFoundError` if missing."""
        job = self.find_job(namespace, name)
        if job is None:
            raise NotFoundError(f"job {namespace}/{name} not found")
        return job

    def list_jobs(self, namespace: str | None = None) -> list[JobRecord]:
        """All jobs (of one namespace when given), oldest first, with their restart history."""
        where, args = ("", ()) if namespace is None else ("WHERE namespace=?", (namespace,))
        with self._lock:
            found = self._query(f"SELECT * FROM jobs {where} ORDER BY created_at", args)
            history: dict[tuple[str, str], list[RestartRecord]] = defaultdict(list)
            for r in self._query(f"SELECT * FROM restarts {where} ORDER BY id", args):
                history[(r["namespace"], r["job"])].append(rows.restart(r))
        return [self._parser.job(r, history.get((r["namespace"], r["name"]), [])) for r in found]

    def commit_step(self, job: JobRecord, write: StepWrite) -> bool:
        """Write the job's status/state/finish time and ``write`` in one transaction, if nobody
        changed the job since it was read; skipped when there is nothing to write.

        Raises:
            ConflictError: the stored version differs (another writer won); re-read and retry.
            NotFoundError: the job was removed.
            LeaseLostError: the store is fenced and its holder lost the lease.
        """
        status, state = rows.status_json(job.status), rows.state_json(job.state)
        if write.empty and job.loaded == rows.Loaded(status, state):
            return False
        with self.transaction():
            cursor = self._conn.execute(
                "UPDATE jobs SET status=?, state=?, finished_at=?, version=version+1 "
                "WHERE namespace=? AND name=? AND version=?",
                (status, state, job.finished_at, job.namespace, job.name, job.version),
            )
            if cursor.rowcount == 0:
                if self.find_job(job.namespace, job.name) is None:
                    raise NotFoundError(f"job {job.key} not found")
                raise ConflictError(f"job {job.key} changed concurrently")
            self._apply_write(write)
        job.version += 1
        job.loaded = rows.Loaded(status, state)
        job.restarts = [*job.restarts, *write.restarts]
        return True

    def save_job(self, job: JobRecord) -> JobRecord:
        """`commit_step` with nothing but the job (tests and tools); returns ``job``."""
        self.commit_step(job, StepWrite())
        return job

    def _apply_write(self, write: StepWrite) -> None:
        """The rows of a step (inside `commit_step`'s transaction)."""
        self._conn.executemany(
            "INSERT INTO restarts (namespace,job,time,restart_type,reason,faulty_pods,"
            "faulty_ranks,faulty_nodes) VALUES (?,?,?,?,?,?,?,?)",
            [rows.restart_row(r) for r in write.restarts],
        )
        self._conn.executemany("DELETE FROM pods WHERE namespace=? AND name=?", write.removed_pods)
        for pod in write.pods:
            self.save_pod(pod)
        for patch in write.node_patches:
            self.patch_node(
                patch.name, labels=patch.labels, annotations=patch.annotations, info=patch.info
            )
        self.add_events(write.events)

    def request_deletion(self, namespace: str, name: str) -> None:
        """Mark a job for deletion; the controller tears it down."""
        cursor = self._write(
            "UPDATE jobs SET deletion_requested=1, version=version+1 WHERE namespace=? AND name=?",
            (namespace, name),
        )
        if cursor.rowcount == 0:
            raise NotFoundError(f"job {namespace}/{name} not found")

    def set_suspend(self, namespace: str, name: str, *, suspend: bool) -> None:
        """Rewrite the stored manifest's ``spec.runPolicy.suspend``."""
        manifest = self.get_job(namespace, name).manifest
        manifest.setdefault("spec", {}).setdefault("runPolicy", {})["suspend"] = suspend
        self._write(
            "UPDATE jobs SET manifest=?, version=version+1 WHERE namespace=? AND name=?",
            (rows.dumps(manifest), namespace, name),
        )

    def remove_job(self, namespace: str, name: str) -> None:
        """Delete a job with its pods, events, restarts and fault requests."""
        with self.transaction():
            found = self._conn.execute(
                "SELECT uid FROM jobs WHERE namespace=? AND name=?", (namespace, name)
            ).fetchone()
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
        if found is not None:
            self._parser.forget(found["uid"])

    def list_restarts(self, namespace: str, job: str) -> list[RestartRecord]:
        """Restarts of a job, oldest first."""
        found = self._query(
            "SELECT * FROM restarts WHERE namespace=? AND job=? ORDER BY id", (namespace, job)
        )
        return [rows.restart(r) for r in found]

    # --- pods ------------------------------------------------------------------------------

    def save_pod(self, pod: PodRecord) -> None:
        """Insert or replace a pod."""
        self._write(
            "INSERT OR REPLACE INTO pods VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows.pod_row(pod)
        )

    def list_pods(self, namespace: str | None = None, job: str | None = None) -> list[PodRecord]:
        """Pods, of one job when ``job`` is given, in creation order."""
        if job is not None:
            found = self._query(
                "SELECT * FROM pods WHERE namespace=? AND job=? ORDER BY created_at, name",
                (namespace or "default", job),
            )
        else:
            found = self._query("SELECT * FROM pods ORDER BY created_at, name")
        return [rows.pod(r) for r in found]

    def remove_pod(self, namespace: str, name: str) -> None:
        """Forget a pod."""
        self._write("DELETE FROM pods WHERE namespace=? AND name=?", (namespace, name))

    # --- nodes -----------------------------------------------------------------------------

    def save_node(self, node: NodeRecord) -> None:
        """Insert or replace a node."""
        self._write("INSERT OR REPLACE INTO nodes VALUES (?,?,?,?,?)", rows.node_row(node))

    def find_node(self, name: str) -> NodeRecord | None:
        """The node, or None."""
        found = self._query("SELECT * FROM nodes WHERE name=?", (name,))
        return rows.node(found[0]) if found else None

    def get_node(self, name: str) -> NodeRecord:
        """The node; `NotFoundError` if missing."""
        node = self.find_node(name)
        if node is None:
            raise NotFoundError(f"node {name} not found")
        return node

    def list_nodes(self) -> list[NodeRecord]:
        """All nodes, by name."""
        return [
            rows.node(r) for r in self._query("SELECT * FROM nodes ORDER BY length(name), name")
        ]

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
            rows.apply_patch(node.labels, labels or {})
            rows.apply_patch(node.annotations, annotations or {})
            rows.apply_patch(node.info, info or {})
            self.save_node(node)
        return node

    def remove_node(self, name: str) -> None:
        """Forget a node."""
        self._write("DELETE FROM nodes WHERE name=?", (name,))

    # --- events ------------------------------------------------------------------

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
        found = self._query(f"SELECT * FROM events {where} ORDER BY id", tuple(args))
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
            for r in found
        ]

    # --- fault requests --------------------------------------------------------------------

    def add_fault_request(self, namespace: str, job: str, spec: FaultSpec, now: float) -> int:
        """Queue a fault for the controller to inject; returns its id."""
        cursor = self._write(
            "INSERT INTO faults (namespace,job,spec,created_at) VALUES (?,?,?,?)",
            (namespace, job, fault_rows.spec_json(spec), now),
        )
        return int(cursor.lastrowid or 0)

    def pending_fault_requests(self) -> list[FaultRequest]:
        """Faults not injected (nor given up on) yet, oldest first."""
        found = self._query(
            "SELECT * FROM faults WHERE outcome=? ORDER BY id", (FaultOutcome.PENDING.value,)
        )
        return [fault_rows.fault(r) for r in found]

    def list_fault_requests(self, namespace: str, job: str) -> list[FaultRequest]:
        """Every fault request of a job with its outcome, oldest first."""
        found = self._query(
            "SELECT * FROM faults WHERE namespace=? AND job=? ORDER BY id", (namespace, job)
        )
        return [fault_rows.fault(r) for r in found]

    def get_fault_request(self, request_id: int) -> FaultRequest:
        """One fault request; `NotFoundError` if missing."""
        found = self._query("SELECT * FROM faults WHERE id=?", (request_id,))
        if not found:
            raise NotFoundError(f"fault request {request_id} not found")
        return fault_rows.fault(found[0])

    def complete_fault_request(
        self, request_id: int, *, outcome: FaultOutcome, result: str, now: float
    ) -> None:
        """Record a pending request's outcome (injected, or not and why); decided ones stay."""
        self._write(
            "UPDATE faults SET done_at=?, result=?, outcome=? WHERE id=? AND outcome=?",
            (now, result, outcome.value, request_id, FaultOutcome.PENDING.value),
        )

    def note_fault_training(
        self, request_id: int, *, training_at: float | None, reported_step: int | None
    ) -> None:
        """Record what a pending request's timing counts from; decided ones stay."""
        self._write(
            "UPDATE faults SET training_at=?, reported_step=? WHERE id=? AND outcome=?",
            (training_at, reported_step, request_id, FaultOutcome.PENDING.value),
        )
