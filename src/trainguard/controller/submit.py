"""Creating a job: from a validated manifest to a stored job the controller will run.

Shared by ``trainguard run`` and ``trainguard job create``. A job gets a uid, a per-job agent
token (agents refuse requests without it), the ``Created`` condition, and any fault requests
the person asked for.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence

from trainguard import constants as c
from trainguard.clock import rfc3339
from trainguard.controller.context import set_condition
from trainguard.controller.fault_injection import check_fits
from trainguard.controller.state import JobState
from trainguard.spec.faults import FaultSpec
from trainguard.spec.job import HyperPodPyTorchJob
from trainguard.spec.limits import GENERATED_SUFFIX_LENGTH
from trainguard.spec.status import JobStatus
from trainguard.store.base import Store
from trainguard.store.records import EventRecord, JobRecord


def submit(
    store: Store,
    job: HyperPodPyTorchJob,
    *,
    now: float,
    source_dir: str | None = None,
    faults: Sequence[FaultSpec] = (),
) -> JobRecord:
    """Store ``job`` as a new job (and its fault requests); returns the record.

    Raises:
        ConflictError: a job of that name exists in the namespace.
        UsageError: a fault aims at a rank the job lacks (nothing is stored then).
    """
    job = with_name(job)
    for fault in faults:
        check_fits(fault, job)
    status = JobStatus()
    set_condition(status, c.COND_CREATED, "True", "Created", "Job created", now=now)
    state = JobState(token=secrets.token_urlsafe(32), phase_since=now)
    record = JobRecord(
        namespace=job.namespace,
        name=job.name,
        uid=str(uuid.uuid4()),
        job=job,
        manifest=job.to_manifest(),
        status=status,
        state=state,
        created_at=now,
        source_dir=source_dir,
    )
    record.manifest.setdefault("metadata", {})["creationTimestamp"] = rfc3339(now)
    created = EventRecord(
        "Job", record.namespace, record.name, "Normal", "Created", "Job created", now
    )
    return store.create_job(record, faults=faults, events=[created])


def with_name(job: HyperPodPyTorchJob) -> HyperPodPyTorchJob:
    """``job`` with ``metadata.name`` set (``generateName`` + a random suffix when missing)."""
    if job.metadata.name:
        return job
    prefix = job.metadata.generate_name or "job-"
    suffix = secrets.token_hex(GENERATED_SUFFIX_LENGTH // 2)
    meta = job.metadata.model_copy(update={"name": prefix + suffix})
    return job.model_copy(update={"metadata": meta})
