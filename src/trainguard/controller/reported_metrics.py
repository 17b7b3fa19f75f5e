"""Metrics fed by what the agents report in ``/status.trainguard``: save stalls, restores and
log-rule evaluations.

The training loop's checkpoint stall, the tier and time of each restore and the lines the log
rules read are seen only on the pods, so every step queues the agents' running totals
(``checkpoint_saves`` with the newest ``save_stalls``, ``resume`` with its ``seconds``,
``rule_lines_evaluated`` / ``rule_lines_dropped``) as metric calls; `trainguard.metrics.Tally`
turns them into increments once each when the step's write succeeded. Nothing is stored: a
status read twice counts once, and a step whose write failed queues the same totals again.

Keys name what a total belongs to: saves count for the agent's life (``pod@pid``); resumes and
rule counts start afresh with each start of the workers (``pod@pid@faultCount``).
"""

from __future__ import annotations

from trainguard.agent.protocol import TrainguardStatus
from trainguard.controller.context import JobContext
from trainguard.metrics import Metrics


def queue_reported_metrics(ctx: JobContext) -> None:
    """Queue the save-stall, restore and log-rule metrics of every pod that answered."""
    for pod in ctx.pods:
        extra = pod.status.trainguard if pod.status else None
        if extra is not None:
            _queue(ctx, f"{pod.name}@{extra.pid}", extra)


def _queue(ctx: JobContext, agent: str, extra: TrainguardStatus) -> None:
    job = ctx.record.key
    if extra.checkpoint_saves:
        ctx.metric(
            Metrics.checkpoint_save_stalls,
            job=job,
            agent=agent,
            saves=extra.checkpoint_saves,
            recent=tuple(extra.save_stalls),
        )
    start = f"{agent}@{extra.fault_count}"
    resume = extra.resume
    if resume is not None and resume.step is not None:
        ctx.metric(
            Metrics.checkpoint_restored,
            job=job,
            agent=start,
            tier=resume.tier or "",
            seconds=resume.seconds,
        )
    if extra.rule_lines_evaluated or extra.rule_lines_dropped:
        ctx.metric(
            Metrics.log_rule_lines,
            job=job,
            agent=start,
            evaluated=extra.rule_lines_evaluated,
            dropped=extra.rule_lines_dropped,
        )
