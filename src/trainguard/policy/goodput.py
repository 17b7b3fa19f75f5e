"""Goodput accounting: where a job's wall time went, and what share of it trained the model.

Goodput is useful training time divided by wall time. Both the controller (``status.goodput``
and the ``trainguard_job_goodput`` gauge) and ``trainguard job report`` call `account`, so the
live number and the report follow one rule; they differ only in how much they know (the report
adds checkpoint stalls from the agents' timelines).

A job is a list of `Segment` values, one per start of the workers (restart number =
``faultCount``). Wall time, from the job's creation to its end (or now), is split into:

* **boot**: creation (or a restart's ``/start``) until the first training step was logged —
  pods, agents, imports, rendezvous, checkpoint load, the first step's compute;
* **training**: first to last logged step of a segment, further split into *useful*, *redone*
  (steps after the checkpoint the next segment resumed from: done twice) and *checkpoint stall*
  (time the training loop waited for saves);
* **detection**: from a faulted segment's last step until the controller saw the fault
  (a kill is seen in milliseconds, a hang only when its log rule fires);
* **restart**: from the fault being seen until the workers were started again;
* **other**: the rest (the final checkpoint wait and shutdown after the last step, clean-up).

Pure: no clock, no I/O; every time is an epoch-seconds argument.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

BUCKETS = ("useful", "boot", "checkpoint_stall", "redone", "detection", "restart", "other")
"""The accounting buckets, in the order reports list them; they sum to the wall time."""


class StepMark(BaseModel):
    """A training step and when it was logged (epoch seconds)."""

    step: int
    time: float


class Segment(BaseModel):
    """One start of the workers: from ``/start`` until the fault (or the end) that stopped them."""

    restart: int = Field(description="faultCount of this start (0 = the first).")
    started: float = Field(description="When /start was sent (epoch s).")
    resumed_from: int | None = Field(
        default=None, description="Checkpoint step the workers resumed from; None = scratch."
    )
    first: StepMark | None = Field(default=None, description="First step logged.")
    last: StepMark | None = Field(default=None, description="Last step logged.")
    ended: float | None = Field(
        default=None, description="When the controller saw the fault, or the job ended."
    )
    fault: str | None = Field(default=None, description="Reason of the fault that ended it.")
    stall: float = Field(default=0.0, description="Seconds the loop waited for saves (per rank).")


class Accounting(BaseModel):
    """Wall time split into `BUCKETS` (seconds), the goodput, and the steps kept."""

    wall: float = 0.0
    useful: float = 0.0
    boot: float = 0.0
    checkpoint_stall: float = 0.0
    redone: float = 0.0
    detection: float = 0.0
    restart: float = 0.0
    other: float = 0.0
    steps: int = Field(default=0, description="Newest step reached (kept work).")
    redone_steps: int = Field(default=0, description="Steps trained twice (or more).")

    @property
    def goodput(self) -> float:
        """useful / wall (0 before any wall time passed)."""
        return self.useful / self.wall if self.wall > 0 else 0.0

    def seconds(self) -> dict[str, float]:
        """The buckets by name, in `BUCKETS` order."""
        return {name: float(getattr(self, name)) for name in BUCKETS}


def account(segments: Sequence[Segment], *, start: float, end: float) -> Accounting:
    """Split ``[start, end]`` into the accounting buckets.

    Args:
        segments: the job's worker starts; sorted here by ``started``.
        start: when the job was created (epoch s).
        end: when it ended, or now for a running job.

    Returns:
        The accounting; ``other`` absorbs what no bucket explains, so buckets sum to ``wall``.
    """
    result = Accounting(wall=max(0.0, end - start))
    ordered = sorted(segments, key=lambda s: s.started)
    previous_end = start
    for index, segment in enumerate(ordered):
        gap = _clip(segment.started, start, end) - previous_end
        if index == 0:
            result.boot += max(0.0, gap)
        else:
            result.restart += max(0.0, gap)
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        _add_segment(result, segment, following, end=end)
        previous_end = _clip(segment.ended if segment.ended is not None else end, start, end)
    known = sum(getattr(result, name) for name in BUCKETS if name != "other")
    result.other = max(0.0, result.wall - known)
    return result


def _add_segment(
    result: Accounting, segment: Segment, following: Segment | None, *, end: float
) -> None:
    stop = min(segment.ended if segment.ended is not None else end, end)
    first, last = segment.first, segment.last or segment.first
    if first is None or last is None or first.time > stop:
        result.boot += max(0.0, stop - segment.started)
        return
    last_time = min(last.time, stop)
    result.boot += max(0.0, first.time - segment.started)
    training = max(0.0, last_time - first.time)
    steps_done = max(0, last.step - first.step)
    per_step = training / steps_done if steps_done else 0.0
    redone_steps = 0
    if following is not None:
        kept = following.resumed_from or 0
        redone_steps = max(0, last.step - max(kept, first.step - 1))
    redone = min(training, per_step * redone_steps)
    stall = min(max(0.0, segment.stall), training - redone)
    result.redone += redone
    result.redone_steps += redone_steps
    result.checkpoint_stall += stall
    result.useful += training - redone - stall
    tail = max(0.0, stop - last_time)
    if segment.fault is not None:
        result.detection += tail
    result.steps = max(result.steps, last.step)


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)
