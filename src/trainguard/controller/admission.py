"""Admitting a job the controller did not create: one applied with ``kubectl`` (any API client).

``trainguard run`` and ``job create`` go through `submit`: the manifest is validated first, and
the stored job gets its agent token and the ``Created`` condition. A job created straight
through the Kubernetes API arrives with none of that. The CRD's schema and CEL rules refuse
much at admission, but not what needs the whole object or trainguard's own limits
(`trainguard.spec.semantics`: unique rule names, a log pattern that compiles, pod counts,
command sizes...) nor anything the CRD schema is looser about than our models.

So the job's first step admits it (a job without the ``Created`` condition), with the very checks
``trainguard validate`` runs: a valid job gets a token (unless its store gave it one) and
``Created``, exactly as `submit` would have given it; an invalid one ends
``Failed`` at once with the condition reason `c.REASON_VALIDATION_FAILED` and a Warning Event
naming every field at fault. It is never retried: the object cannot become valid without a new
``spec``, and a controller that kept failing on it would be a crash loop by another name.
"""

from __future__ import annotations

import secrets

from trainguard import constants as c
from trainguard.clock import rfc3339
from trainguard.controller.context import set_condition
from trainguard.controller.state import JobPhase
from trainguard.errors import SpecError, SpecIssue
from trainguard.spec.load import parse_job
from trainguard.store.records import EventRecord, JobRecord

MAX_MESSAGE_ISSUES = 5
"""Issues spelled out in the condition and Event (the rest are counted)."""


def needs_admission(record: JobRecord) -> bool:
    """Whether ``record`` never went through `submit` or an earlier admission: no ``Created``
    condition yet. (Not "no token": a store may hand out a token on first read, as the
    Kubernetes store does for a job whose Secret does not exist yet.)"""
    created = any(x.type == c.COND_CREATED for x in record.status.conditions)
    return not created and record.state.phase is JobPhase.PENDING


def admit(record: JobRecord, *, now: float) -> list[EventRecord]:
    """Validate ``record``'s manifest and mark it Created or Failed (in place); returns the
    Events to write with the status."""
    issues = manifest_issues(record)
    if issues:
        return _reject(record, issues, now=now)
    record.state.token = record.state.token or secrets.token_urlsafe(32)
    record.state.phase_since = now
    set_condition(record.status, c.COND_CREATED, "True", "Created", "Job created", now=now)
    return [_event(record, "Normal", "Created", "Job created", now)]


def manifest_issues(record: JobRecord) -> list[SpecIssue]:
    """The errors ``trainguard validate`` would report for ``record``'s manifest."""
    try:
        parse_job(record.manifest, source=f"{c.KIND} {record.namespace}/{record.name}")
    except SpecError as exc:
        return exc.issues or [SpecIssue("", str(exc))]
    return []


def describe(issues: list[SpecIssue]) -> str:
    """``path: message; ...`` for the first `MAX_MESSAGE_ISSUES` issues."""
    shown = "; ".join(f"{i.path or '(manifest)'}: {i.message}" for i in issues[:MAX_MESSAGE_ISSUES])
    more = len(issues) - MAX_MESSAGE_ISSUES
    return shown + (f"; and {more} more" if more > 0 else "")


def _reject(record: JobRecord, issues: list[SpecIssue], *, now: float) -> list[EventRecord]:
    message = f"invalid manifest: {describe(issues)}"
    status = record.status
    set_condition(status, c.COND_CREATED, "True", "Created", "Job created", now=now)
    set_condition(status, c.COND_FAILED, "True", c.REASON_VALIDATION_FAILED, message, now=now)
    status.completion_time = rfc3339(now)
    record.finished_at = now
    record.state.move(JobPhase.FAILED, now=now)
    record.state.cleaned_up = True  # it never had pods or memory
    return [_event(record, "Warning", c.REASON_VALIDATION_FAILED, message, now)]


def _event(record: JobRecord, kind: str, reason: str, message: str, now: float) -> EventRecord:
    return EventRecord("Job", record.namespace, record.name, kind, reason, message, now)
