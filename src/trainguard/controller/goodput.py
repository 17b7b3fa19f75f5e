"""The controller's goodput: segments of the job kept in `JobState`, accounted every step.

Level-triggered like the phase handlers: after the handlers ran, `track_goodput` looks at the
restart number (``faultCount``) and phase, closes the segment a fault or the job's end stopped,
opens one when workers of a new restart are starting, and notes the first step the agents
logged (``/status.progress`` carries the newest step every local rank reached, see
`trainguard.agent.timeline`). The last step is read live from the agents and stored only when a
segment closes, so a training job does not cost a store write per step. The accounting rule
itself is `trainguard.policy.goodput.account`, shared with ``trainguard job report``.
"""

from __future__ import annotations

from collections.abc import Mapping

from trainguard.agent.protocol import PROGRESS_PREFIX
from trainguard.controller.context import JobContext, PodView
from trainguard.controller.state import TERMINAL, JobPhase
from trainguard.metrics import Metrics
from trainguard.policy.goodput import Segment, StepMark, account

_STARTED = frozenset({JobPhase.STARTING, JobPhase.RUNNING})


def track_goodput(ctx: JobContext, *, seen: list[PodView]) -> None:
    """Update the job's segments, ``status.goodput`` and the goodput gauge.

    Args:
        ctx: the step's context, after the phase handlers ran.
        seen: the active pods as observed before the handlers ran (a job that just ended may
            have deleted its pods from ``ctx`` already; their last reports still count).
    """
    segments = ctx.state.segments
    current = segments[-1] if segments else None
    stopped = current is not None and (
        current.restart != ctx.state.fault_count or ctx.state.phase in TERMINAL
    )
    if current is not None and current.ended is None and stopped:
        _close(ctx, current, seen)
    if ctx.state.phase in _STARTED and (
        current is None or current.restart != ctx.state.fault_count
    ):
        current = Segment(restart=ctx.state.fault_count, started=ctx.now)
        segments.append(current)
    if current is None:
        return
    _note_start(ctx, current, seen)
    live = current
    if current.ended is None:
        live = current.model_copy(update={"last": step_mark(seen, current) or None})
    end = ctx.record.finished_at or ctx.now
    accounting = account([*segments[:-1], live], start=ctx.record.created_at, end=end)
    ctx.status.goodput = round(accounting.goodput, 3)
    ctx.metric(Metrics.job_goodput, ctx.record.key, accounting.goodput)


def step_mark(pods: list[PodView], segment: Segment, *, every: bool = True) -> StepMark | None:
    """The newest step the active pods of ``segment``'s restart reached, or None.

    Args:
        pods: the job's active pods.
        segment: the segment whose restart the agents' reports must belong to.
        every: None unless every pod reports (False: the pods that still answer, as after a
            fault some agents may be gone).
    """
    marks = []
    for pod in pods:
        extra = pod.status.trainguard if pod.status else None
        current = extra is not None and extra.fault_count == segment.restart
        mark = _mark(pod.status.progress if pod.status and current else None)
        if mark is not None and mark.time >= segment.started:
            marks.append(mark)
        elif every:
            return None
    return min(marks, key=lambda m: m.step) if marks else None


def _mark(progress: Mapping[str, object] | None) -> StepMark | None:
    entry = (progress or {}).get(PROGRESS_PREFIX)
    if not isinstance(entry, Mapping):
        return None
    step, time = entry.get("step"), entry.get("stepTime")
    if isinstance(step, int) and isinstance(time, int | float):
        return StepMark(step=step, time=float(time))
    return None


def _note_start(ctx: JobContext, segment: Segment, seen: list[PodView]) -> None:
    if segment.first is None and segment.ended is None:
        segment.first = step_mark(seen, segment)
    if segment.resumed_from is None:
        resume = next((r for r in ctx.status.resumes if r.restart == segment.restart), None)
        segment.resumed_from = resume.step if resume else None


def _close(ctx: JobContext, segment: Segment, seen: list[PodView]) -> None:
    fault = ctx.state.fault
    segment.last = step_mark(seen, segment, every=False) or segment.first
    if ctx.state.phase in TERMINAL:
        segment.ended = ctx.record.finished_at or ctx.now
    elif fault is not None:
        segment.ended, segment.fault = fault.observed_at, fault.reason
    else:
        segment.ended = ctx.now
