"""How jobs look on the command line: the custom-resource JSON object and kubectl-style text."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from trainguard.clock import rfc3339
from trainguard.controller.state import JobState
from trainguard.spec.status import JobStatus
from trainguard.store.records import EventRecord, JobRecord, PodRecord


def job_object(record: JobRecord, events: list[EventRecord]) -> dict[str, Any]:
    """The job shaped like the custom resource, plus its events (``--output json``)."""
    manifest = dict(record.manifest)
    metadata = dict(manifest.get("metadata") or {})
    metadata.update({"name": record.name, "namespace": record.namespace, "uid": record.uid})
    return {
        "apiVersion": manifest.get("apiVersion"),
        "kind": manifest.get("kind"),
        "metadata": metadata,
        "spec": manifest.get("spec"),
        "status": JobStatus.model_validate(record.status).to_manifest(),
        "events": [
            {"type": e.type, "reason": e.reason, "message": e.message, "time": rfc3339(e.time)}
            for e in events
        ],
    }


def job_state(record: JobRecord) -> str:
    """The job's phase word for tables."""
    return JobState.model_validate(record.state).phase.value


def latest_condition(record: JobRecord) -> str:
    """Type of the newest condition that is True (HyperPod's STATUS column)."""
    status = JobStatus.model_validate(record.status)
    true = [x for x in status.conditions if x.status == "True"]
    return true[-1].type if true else "-"


def age(seconds: float) -> str:
    """``42s`` / ``5m`` / ``3h`` / ``2d`` like kubectl."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def jobs_table(records: list[JobRecord], now: float) -> Table:
    """``job list``."""
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "NAMESPACE", "STATUS", "PHASE", "RESTARTS", "AGE"):
        table.add_column(column)
    for record in records:
        status = JobStatus.model_validate(record.status)
        table.add_row(
            record.name,
            record.namespace,
            latest_condition(record),
            job_state(record),
            str(status.restart_count),
            age(now - record.created_at),
        )
    return table


def describe(
    record: JobRecord, pods: list[PodRecord], events: list[EventRecord], now: float
) -> str:
    """``job describe``: like ``kubectl describe`` (conditions, counters, pods, events)."""
    status = JobStatus.model_validate(record.status)
    header = _row("Type", "Status", "Reason", "Last Transition", "Message")
    lines = [*_summary(record, status), "Conditions:", header]
    for cond in status.conditions:
        when = cond.last_transition_time or ""
        lines.append(_row(cond.type, cond.status, cond.reason or "", when, cond.message or ""))
    lines.append("Pods:")
    for pod in pods:
        role = "spare" if pod.spare else f"rank {pod.node_rank}"
        lines.append(
            f"  {pod.name:<28} {pod.node:<10} {role:<8} attempt {pod.attempt}  {pod.url or ''}"
        )
    lines.append("Events:")
    lines.append(f"  {'Type':<8} {'Reason':<36} {'Age':<5} Message")
    lines.extend(f"  {e.type:<8} {e.reason:<36} {age(now - e.time):<5} {e.message}" for e in events)
    return "\n".join(lines)


def _row(kind: str, value: str, reason: str, when: str, message: str) -> str:
    return f"  {kind:<12} {value:<7} {reason:<36} {when:<21} {message}"


def _summary(record: JobRecord, status: JobStatus) -> list[str]:
    spec = record.manifest.get("spec", {})
    groups = ", ".join(
        f"{r['name']}={r.get('replicas', 1)} (+{r.get('spares', 0)} spare)"
        for r in spec.get("replicaSpecs", [])
    )
    restarts = status.restart_status.full_job_restart_count
    lines = [
        f"Name:           {record.name}",
        f"Namespace:      {record.namespace}",
        f"UID:            {record.uid}",
        f"Kind:           {record.manifest.get('kind')}",
        f"Phase:          {job_state(record)}",
        f"Nproc Per Node: {spec.get('nprocPerNode')}",
        f"Replica Specs:  {groups}",
        f"Start Time:     {status.start_time or '-'}",
        f"Completion:     {status.completion_time or '-'}",
        f"Restart Count:  {status.restart_count} (full job restarts: {restarts})",
        f"Master:         {status.master_addr or '-'}:{status.master_port or '-'}",
    ]
    faulty = status.latest_faulty_pod_instance_list
    if faulty is not None:
        lines.append(f"Last Fault:     {faulty.restart_type} pods={faulty.faulty_pod_list}")
        nodes = faulty.faulty_instance_id_list
        lines.append(f"                ranks={faulty.faulty_rank_list} nodes={nodes}")
    if status.resumes:
        resumes = (f"restart {r.restart}: step {r.step} from {r.tier}" for r in status.resumes)
        lines.append("Resumes:        " + ", ".join(resumes))
    return lines
