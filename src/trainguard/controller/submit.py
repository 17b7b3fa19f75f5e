"""Creating a job: from a validated manifest to a stored job the controller will run.

Shared by ``trainguard run`` and ``trainguard job create``. A job gets a uid, a per-job agent
token (agents refuse requests without it), the ``Created`` condition, and any fault requests
the person asked for.
"""

from __future__ import annotations

import secrets
import uuid

from trainguard import constants as c
from trainguard.clock import rfc3339
from trainguard.controller.context import set_condition
from trainguard.controller.faults import parse_fault
from trainguard.controller.state import JobState
from trainguard.spec.job import HyperPodPyTorchJob
from trainguard.spec.status import JobStatus
from trainguard.store.records import EventRecord, JobRecord
from trainguard.store.sqlite import SqliteStore


def submit(
    store: SqliteStore,
    job: HyperPodPyTorchJob,
    *,
    now: float,
    source_dir: str | None = None,
    faults: list[str] | None = None,
) -> JobRecord:
    """Store ``job`` as a new job (and its fault requests); returns the record.

    Raises:
        ConflictError: a job of that name exists in the namespace.
        UsageError: a fault spec is malformed (nothing is stored then).
    """
    specs = [parse_fault(f).render() for f in faults or []]
    job = with_name(job)
    status = JobStatus()
    set_condition(status, c.COND_CREATED, "True", "Created", "Job created", now=now)
    state = JobState(token=secrets.token_urlsafe(32), phase_since=now)
    record = JobRecord(
        namespace=job.namespace,
        name=job.name,
        uid=str(uuid.uuid4()),
        manifest=job.to_manifest(),
        status=status.to_manifest(),
        state=state.model_dump(mode="json"),
        created_at=now,
        source_dir=source_dir,
    )
    record.manifest.setdefault("metadata", {})["creationTimestamp"] = rfc3339(now)
    with store.transaction():
        store.create_job(record)
        for spec in specs:
            store.add_fault_request(record.namespace, record.name, spec, now)
        store.add_events(
            [
                EventRecord(
                    "Job", record.namespace, record.name, "Normal", "Created", "Job created", now
                )
            ]
        )
    return record


def with_name(job: HyperPodPyTorchJob) -> HyperPodPyTorchJob:
    """``job`` with ``metadata.name`` set (``generateName`` + a random suffix when missing)."""
    if job.metadata.name:
        return job
    prefix = job.metadata.generate_name or "job-"
    meta = job.metadata.model_copy(update={"name": prefix + secrets.token_hex(3)})
    return job.model_copy(update={"metadata": meta})
