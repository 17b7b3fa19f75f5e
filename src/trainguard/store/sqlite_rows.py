"""Rows of the SQLite store and the records they map to (`SqliteStore`'s private half).

Kept apart from `trainguard.store.sqlite` (record operations) and `trainguard.store.sqlite_db`
(the file, transactions, the lease) so each reads on its own.
Job rows are parsed into typed models here and nowhere else: a job's manifest is parsed once
per content (it never changes after creation) and shared between reads; status and state are
parsed from their JSON text with ``model_validate_json`` (no intermediate dicts).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from trainguard.spec.job import HyperPodPyTorchJob
from trainguard.spec.status import JobStatus
from trainguard.store.jobstate import JobState
from trainguard.store.records import (
    JobRecord,
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
    spec TEXT NOT NULL, created_at REAL NOT NULL, done_at REAL, result TEXT,
    outcome TEXT NOT NULL DEFAULT 'pending', training_at REAL, reported_step INTEGER);
CREATE TABLE IF NOT EXISTS controller_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL, callback_url TEXT, metrics_url TEXT,
    renewals INTEGER NOT NULL, duration REAL NOT NULL);
"""


T = TypeVar("T")


def dumps(value: Any) -> str:
    """Compact JSON (the stored form of every JSON column)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=True)


@dataclass(frozen=True)
class Loaded:
    """The JSON a job's status and state were read as (`JobRecord.loaded`)."""

    status: str
    state: str


def status_json(status: JobStatus) -> str:
    """The stored form of a status: its manifest (wire) form."""
    return dumps(status.to_manifest())


def state_json(state: JobState) -> str:
    """The stored form of the controller's state."""
    return dumps(state.model_dump(mode="json"))


class JobParser:
    """Builds `JobRecord`s from rows, parsing each distinct manifest once.

    A part the models refuse (written below validation) does not stop the other jobs being
    read: it is replaced by an empty model and named in `JobRecord.defects`.
    """

    def __init__(self) -> None:
        self._specs: dict[str, tuple[str, HyperPodPyTorchJob, dict[str, Any]]] = {}

    def job(self, r: sqlite3.Row, restarts: list[RestartRecord]) -> JobRecord:
        """The record of row ``r`` with ``restarts`` as its history."""
        defects: list[str] = []
        parsed = _parsed(defects, "manifest", lambda: self._spec(r["uid"], r["manifest"]))
        empty = HyperPodPyTorchJob.model_construct()  # type: ignore[call-arg]
        spec, manifest = parsed or (empty, {})
        return JobRecord(
            namespace=r["namespace"],
            name=r["name"],
            uid=r["uid"],
            job=spec,
            manifest=manifest,
            status=_parsed(defects, "status", lambda: JobStatus.model_validate_json(r["status"]))
            or JobStatus(),
            state=_parsed(defects, "state", lambda: JobState.model_validate_json(r["state"]))
            or JobState(),
            created_at=r["created_at"],
            finished_at=r["finished_at"],
            deletion_requested=bool(r["deletion_requested"]),
            source_dir=r["source_dir"],
            version=r["version"],
            restarts=restarts,
            loaded=Loaded(r["status"], r["state"]),
            defects=tuple(defects),
        )

    def _spec(self, uid: str, text: str) -> tuple[HyperPodPyTorchJob, dict[str, Any]]:
        cached = self._specs.get(uid)
        if cached is None or cached[0] != text:
            manifest = json.loads(text)
            cached = (text, HyperPodPyTorchJob.model_validate(manifest), manifest)
            self._specs[uid] = cached
        return cached[1], cached[2]

    def forget(self, uid: str) -> None:
        """Drop the parsed manifest of a removed job."""
        self._specs.pop(uid, None)


def _parsed(defects: list[str], part: str, parse: Callable[[], T]) -> T | None:
    try:
        return parse()
    except ValueError as exc:  # pydantic's ValidationError and json's JSONDecodeError
        defects.append(f"stored {part} is invalid: {type(exc).__name__}: {exc}")
        return None


def restart(r: sqlite3.Row) -> RestartRecord:
    """The restart of row ``r``."""
    return RestartRecord(
        r["namespace"],
        r["job"],
        r["time"],
        r["restart_type"],
        r["reason"],
        tuple(json.loads(r["faulty_pods"])),
        tuple(json.loads(r["faulty_ranks"])),
        tuple(json.loads(r["faulty_nodes"])),
    )


def restart_row(restart: RestartRecord) -> tuple[Any, ...]:
    """The values of an ``INSERT INTO restarts`` (without the id)."""
    return (
        restart.namespace,
        restart.job,
        restart.time,
        restart.restart_type,
        restart.reason,
        dumps(list(restart.faulty_pods)),
        dumps(list(restart.faulty_ranks)),
        dumps(list(restart.faulty_nodes)),
    )


def pod_row(pod: PodRecord) -> tuple[Any, ...]:
    """The values of an ``INSERT INTO pods``."""
    return (
        pod.namespace, pod.name, pod.job, pod.node, pod.replica_spec, pod.node_rank,
        int(pod.spare), pod.attempt, pod.phase, pod.host, pod.port, pod.pid, pod.created_at,
        dumps(pod.labels), dumps(pod.info),
    )  # fmt: skip


def node_row(node: NodeRecord) -> tuple[Any, ...]:
    """The values of an ``INSERT INTO nodes``."""
    return (
        node.name, dumps(node.labels), dumps(node.annotations), node.created_at,
        dumps(node.info),
    )  # fmt: skip


def apply_patch(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value


def pod(r: sqlite3.Row) -> PodRecord:
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


def node(r: sqlite3.Row) -> NodeRecord:
    return NodeRecord(
        name=r["name"],
        labels=json.loads(r["labels"]),
        annotations=json.loads(r["annotations"]),
        created_at=r["created_at"],
        info=json.loads(r["info"]),
    )
