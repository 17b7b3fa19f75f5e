"""How jobs look on the command line: the custom-resource JSON object and kubectl-style text.

Text never shows Python's ``None`` or a list's ``repr``: an absent value prints as ``-`` (kubectl
prints ``<none>``), lists as comma-separated words. Tables are plain fixed-width text rather than
rich tables, so no user string (a job name, a message with ``[gpu]``) is read as rich markup, and
``job list -w`` can print one row at a time in the same columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainguard.clock import rfc3339
from trainguard.spec.status import JobStatus, Resume
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
        "status": record.status.to_manifest(),
        "events": [
            {"type": e.type, "reason": e.reason, "message": e.message, "time": rfc3339(e.time)}
            for e in events
        ],
    }


def job_state(record: JobRecord) -> str:
    """The job's phase word for tables."""
    return record.state.phase.value


def latest_condition(record: JobRecord) -> str:
    """Type of the newest condition that is True (HyperPod's STATUS column)."""
    status = record.status
    true = [x for x in status.conditions if x.status == "True"]
    return true[-1].type if true else "-"


def age(seconds: float) -> str:
    """``42s`` / ``5m`` / ``3h`` / ``2d`` like kubectl."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


JOB_COLUMNS = ("NAME", "NAMESPACE", "STATUS", "PHASE", "RESTARTS", "AGE")
WIDE_COLUMNS = ("NODES", "MASTER", "COMPLETION")
POD_COLUMNS = ("NAME", "NODE", "ROLE", "STATUS", "ATTEMPT", "RESTARTS", "AGE")
MIN_WIDTH = 10
"""Narrowest column of a text table (``job list -w`` rows keep the header's widths)."""


def text(value: object) -> str:
    """A value in a text column: ``-`` for nothing, lists comma-joined, never ``None``."""
    if value is None or value in ("", []):
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(text(v) for v in value)
    return str(value)


def job_row(
    record: JobRecord, now: float, *, wide: bool = False, pods: Sequence[PodRecord] = ()
) -> list[str]:
    """One ``job list`` row (``-o wide`` adds nodes, master and completion time)."""
    status = record.status
    row = [
        record.name,
        record.namespace,
        latest_condition(record),
        job_state(record),
        str(status.restart_count),
        age(now - record.created_at),
    ]
    if wide:
        master = f"{status.master_addr}:{status.master_port}" if status.master_addr else None
        nodes = sorted({p.node for p in pods})
        row += [text(nodes), text(master), text(status.completion_time)]
    return row


def table(header: tuple[str, ...], rows: list[list[str]]) -> tuple[str, list[int]]:
    """Fixed-width text of ``rows`` under ``header``, and the widths used."""
    widths = [max([MIN_WIDTH, len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    lines = [line(list(header), widths), *(line(r, widths) for r in rows)]
    return "\n".join(lines), widths


def line(cells: list[str], widths: list[int]) -> str:
    """Cells padded to ``widths`` (the last one unpadded)."""
    padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=False)]
    return "   ".join([*padded, cells[-1]]).rstrip()


def pod_row(pod: PodRecord, restarts: int, now: float) -> list[str]:
    """One ``job pods`` row."""
    role = "spare" if pod.spare else f"rank {text(pod.node_rank)}"
    return [
        pod.name,
        pod.node,
        role,
        pod.phase,
        str(pod.attempt),
        str(restarts),
        age(now - pod.created_at),
    ]


def describe(
    record: JobRecord,
    pods: list[PodRecord],
    events: list[EventRecord],
    now: float,
    *,
    wide: bool = False,
) -> str:
    """``job describe``: like ``kubectl describe`` (``wide`` adds each pod's agent URL)."""
    status = record.status
    header = _row("Type", "Status", "Reason", "Last Transition", "Message")
    lines = [*_summary(record, status), "Conditions:", header]
    for cond in status.conditions:
        when = text(cond.last_transition_time)
        lines.append(_row(cond.type, cond.status, text(cond.reason), when, text(cond.message)))
    lines.append("Pods:" if pods else "Pods:           -")
    for pod in pods:
        role = "spare" if pod.spare else f"rank {text(pod.node_rank)}"
        url = f"  {text(pod.url)}" if wide else ""
        lines.append(f"  {pod.name:<28} {pod.node:<10} {role:<8} attempt {pod.attempt}{url}")
    lines.append("Events:" if events else "Events:         -")
    if events:
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
        f"Kind:           {text(record.manifest.get('kind'))}",
        f"Phase:          {job_state(record)}",
        f"Nproc Per Node: {text(spec.get('nprocPerNode'))}",
        f"Replica Specs:  {text(groups)}",
        f"Start Time:     {text(status.start_time)}",
        f"Completion:     {text(status.completion_time)}",
        f"Restart Count:  {status.restart_count} (full job restarts: {restarts})",
        f"Master:         {text(status.master_addr)}:{text(status.master_port)}",
    ]
    if status.current_replicas is not None:
        size = f"{status.current_replicas} of {text(status.desired_replicas)} node(s)"
        lines.append(f"Elastic Size:   {size} (current of desired)")
    faulty = status.latest_faulty_pod_instance_list
    if faulty is not None:
        pods = text(faulty.faulty_pod_list)
        lines.append(f"Last Fault:     {text(faulty.restart_type)} pods={pods}")
        nodes = text(faulty.faulty_instance_id_list)
        lines.append(f"                ranks={text(faulty.faulty_rank_list)} nodes={nodes}")
    if status.resumes:
        lines.append("Resumes:        " + ", ".join(_resume_text(r) for r in status.resumes))
        lines.extend(
            f"                restart {r.restart}: {r.reason}" for r in status.resumes if r.reason
        )
    return lines


def _resume_text(resume: Resume) -> str:
    """``restart 2: step 40 from durable (saved by 3 ranks, now 2)``."""
    where = (
        f"step {resume.step} from {text(resume.tier)}"
        if resume.step is not None
        else "from scratch"
    )
    saved, now = resume.saved_world_size, resume.world_size
    resized = None not in (saved, now) and saved != now
    return f"restart {resume.restart}: {where}" + (
        f" (saved by {saved} ranks, now {now})" if resized else ""
    )
