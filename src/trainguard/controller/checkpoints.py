"""Failed checkpoint saves, from the agents' status to the job's status, events and metrics.

A durable save that fails (disk full, store down) never stops training: the memory tier
still protects it, so the worker logs the failure and goes on. Without this module the job
would end ``Completed`` with nothing to show that its durable checkpoints are missing. The
worker reports each failure to its agent (``ckpt_save_failed``), the agent counts them in
``/status`` (``trainguard.checkpointFailures`` and the latest one), and every controller step
turns new ones into ``status.checkpoint`` (count and latest failure), one ``CheckpointFailed``
Warning event per pod and step, and ``trainguard_checkpoint_save_failures_total``.

The agent's count only grows while the agent lives, so the controller remembers how many it
counted per ``pod@agent-pid``; a recreated pod (new agent) starts a new key.
"""

from __future__ import annotations

from trainguard import constants as c
from trainguard.clock import rfc3339
from trainguard.controller.context import JobContext, PodView
from trainguard.metrics import Metrics
from trainguard.spec.status import CheckpointFailureRecord, CheckpointStatus


def record_checkpoint_failures(ctx: JobContext) -> None:
    """Fold failures the agents reported since the last step into status, events, metrics."""
    for pod in ctx.pods:
        _record_pod(ctx, pod)


def _record_pod(ctx: JobContext, pod: PodView) -> None:
    extra = pod.status.trainguard if pod.status else None
    if extra is None or extra.last_checkpoint_failure is None:
        return
    key = f"{pod.name}@{extra.pid}"
    new = extra.checkpoint_failures - ctx.state.checkpoint_failures_seen.get(key, 0)
    if new <= 0:
        return
    ctx.state.checkpoint_failures_seen[key] = extra.checkpoint_failures
    last = extra.last_checkpoint_failure
    status = ctx.status.checkpoint or CheckpointStatus()
    status.failure_count += new
    status.last_failure = CheckpointFailureRecord(
        step=last.step,
        rank=last.rank,
        tier=last.tier,
        pod=pod.name,
        message=last.message,
        time=rfc3339(last.time),
    )
    ctx.status.checkpoint = status
    more = f" ({new} failed saves since the last report)" if new > 1 else ""
    ctx.event(
        "Warning",
        c.REASON_CHECKPOINT_FAILED,
        f"Checkpoint save of step {last.step} failed on rank {last.rank} "
        f"({last.tier} tier, pod {pod.name}): {last.message}{more}",
    )
    ctx.metric(Metrics.checkpoint_save_failures, new)
