"""Why a job's pods cannot be placed: an account of every node, in the words a user acts on.

Placement (`trainguard.policy.placement`) only knows that a node is occupied or unhealthy; the
user needs to know *by what*. The commonest cause on a local cluster is pods of a finished job
kept by ``cleanPodPolicy: None`` (Kubeflow's default): they hold their nodes until the job is
deleted, and a new job waits for nodes that never free up. The account names those jobs and
the command that frees their nodes, so the Unschedulable condition (and ``trainguard run``'s
live view, which shows it) says what to do instead of leaving the job silently ``Created``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from trainguard.controller.context import JobContext
from trainguard.controller.state import TERMINAL
from trainguard.policy.placement import is_schedulable
from trainguard.store.records import JobRecord, PodRecord

REASON_FAILED_SCHEDULING = "FailedScheduling"
"""Event reason when a job's pods cannot be placed (Kubernetes' scheduler uses the same)."""

JobLookup = Callable[[str, str], JobRecord | None]


def node_account(ctx: JobContext, pods: Iterable[PodRecord], find_job: JobLookup) -> str:
    """``"0/3 nodes free: 2 held by pods of job X kept by cleanPodPolicy None, 1 unhealthy"``.

    Args:
        ctx: the job being placed (its nodes).
        pods: every pod in the store, of every job.
        find_job: looks up the job record of a pod's job (namespace, name).

    Returns:
        One line; a hint on how to free kept pods' nodes is appended when some are kept.
    """
    holders: dict[str, PodRecord] = {}
    for pod in pods:
        holders.setdefault(pod.node, pod)
    free, unhealthy = 0, 0
    held: dict[str, int] = {}
    kept: list[str] = []
    for name in sorted(ctx.nodes):
        holder = holders.get(name)
        if holder is not None:
            why, keeper = _held_by(ctx, holder, find_job)
            held[why] = held.get(why, 0) + 1
            if keeper and keeper not in kept:
                kept.append(keeper)
        elif not is_schedulable(ctx.nodes[name].labels):
            unhealthy += 1
        else:
            free += 1
    parts = [f"{count} held by {why}" for why, count in held.items()]
    parts += [f"{unhealthy} unhealthy"] if unhealthy else []
    text = f"{free}/{len(ctx.nodes)} nodes free" + (": " + ", ".join(parts) if parts else "")
    if kept:
        commands = " / ".join(f"`trainguard job delete {job}`" for job in kept)
        text += f" (free the kept pods' nodes with {commands})"
    return text


def _held_by(ctx: JobContext, pod: PodRecord, find_job: JobLookup) -> tuple[str, str | None]:
    """What holds a node, and the job name to delete when its pods are merely kept."""
    if pod.namespace == ctx.namespace and pod.job == ctx.name:
        return "this job's own pods", None
    label = pod.job if pod.namespace == ctx.namespace else f"{pod.namespace}/{pod.job}"
    record = find_job(pod.namespace, pod.job)
    if record is None:
        return f"pods of deleted job {label}", None
    if record.state.phase not in TERMINAL:
        return f"pods of running job {label}", None
    return f"pods of job {label} kept by cleanPodPolicy {_clean_policy(record)}", label


def _clean_policy(record: JobRecord) -> str:
    if record.defects:
        return "unknown"
    return str(record.job.spec.run_policy.clean_pod_policy)
