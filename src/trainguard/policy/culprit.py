"""Which rank caused a hang: the culprit among ranks that all went quiet at once.

When one rank of a collective job hangs, every rank stops printing: the others wait for it
inside an allreduce. A log rule therefore fires on every pod at about the same time, and the
first pod to report is chance, not cause. The agents report what each worker process is doing
(its ``/proc`` state letter, whether its CPU time still moves, the last step it reported); this
module compares those facts across all ranks of the job and names the rank that stands out.

Evidence is tried strongest first: a worker process that is gone, one stopped (``T``), one in
uninterruptible sleep (``D``) are abnormal on their own; a rank whose reported step lags while
every other rank agrees, or whose CPU time stands still while every other rank's moves, stands
out only by comparison, so those rules need facts from every rank. When nothing stands out the
answer is `UnknownCulprit`: naming the wrong rank would send repeat-offender avoidance to a
healthy node. Pure: facts in, a decision value out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

DEAD_STATES = frozenset({"Z", "X", "x"})
STOPPED_STATES = frozenset({"T", "t"})
UNINTERRUPTIBLE_STATES = frozenset({"D"})


@dataclass(frozen=True)
class RankFacts:
    """What the agent of ``pod`` last saw of the worker running global rank ``rank``."""

    rank: int
    pod: str
    node: str
    state: str | None
    """``/proc/<pid>/stat`` state letter; None when the process is gone."""
    state_for: float = 0.0
    """Seconds the worker has been in ``state`` without a change."""
    cpu_idle_for: float = 0.0
    """Seconds since the worker's CPU time last advanced."""
    step: int | None = None
    """The last training step the worker reported; None before its first report."""


@dataclass(frozen=True)
class CulpritLimits:
    """How long a state must last before it counts as evidence."""

    stopped_after: float = 1.0
    """Seconds a worker must stay stopped (``T``) before it is blamed: only a signal or a
    debugger stops a process, but a sampling profiler does so for a moment."""
    stuck_after: float = 5.0
    """Seconds a worker must stay in ``D`` or without CPU time before it is blamed: a process
    passes through ``D`` for a disk read, and CPU time moves in clock ticks."""


@dataclass(frozen=True)
class Culprit:
    """The rank(s) that stand out, and why."""

    ranks: tuple[RankFacts, ...]
    cause: str
    """A short phrase: ``stopped``, ``dead``, ``in uninterruptible sleep``, ..."""

    @property
    def rank_list(self) -> list[int]:
        """Global ranks, ascending."""
        return sorted({r.rank for r in self.ranks})

    @property
    def pods(self) -> list[str]:
        """Pods of the culprit ranks, in rank order, each once."""
        return list(dict.fromkeys(r.pod for r in sorted(self.ranks, key=lambda r: r.rank)))

    @property
    def nodes(self) -> list[str]:
        """Nodes of the culprit ranks, in rank order, each once."""
        return list(dict.fromkeys(r.node for r in sorted(self.ranks, key=lambda r: r.rank)))


@dataclass(frozen=True)
class UnknownCulprit:
    """No rank stands out; ``why`` says what was compared."""

    why: str


Rule = Callable[[Sequence[RankFacts], CulpritLimits], "Culprit | None"]


def find_culprit(
    facts: Sequence[RankFacts], *, complete: bool, limits: CulpritLimits | None = None
) -> Culprit | UnknownCulprit:
    """The rank(s) that caused the job to stall, or `UnknownCulprit`.

    Args:
        facts: one entry per rank the agents reported.
        complete: every rank of the job is in ``facts`` (comparisons need all of them).
        limits: thresholds (defaults when None).
    """
    limits = limits or CulpritLimits()
    if not facts:
        return UnknownCulprit("no agent reported its workers")
    rules = ABSOLUTE_RULES + (COMPARATIVE_RULES if complete else ())
    for rule in rules:
        found = rule(facts, limits)
        if found is not None:
            return found
    if not complete:
        return UnknownCulprit("not every rank was reported, and none reported is stopped or dead")
    return UnknownCulprit("every rank is waiting alike")


def _dead(facts: Sequence[RankFacts], limits: CulpritLimits) -> Culprit | None:
    del limits
    return _blame(facts, [f for f in facts if f.state is None or f.state in DEAD_STATES], "dead")


def _stopped(facts: Sequence[RankFacts], limits: CulpritLimits) -> Culprit | None:
    found = [f for f in facts if f.state in STOPPED_STATES and f.state_for >= limits.stopped_after]
    return _blame(facts, found, "stopped")


def _uninterruptible(facts: Sequence[RankFacts], limits: CulpritLimits) -> Culprit | None:
    found = [
        f for f in facts if f.state in UNINTERRUPTIBLE_STATES and f.state_for >= limits.stuck_after
    ]
    return _blame(facts, found, "in uninterruptible sleep")


def _lagging_step(facts: Sequence[RankFacts], limits: CulpritLimits) -> Culprit | None:
    del limits
    steps = [f.step for f in facts]
    if any(s is None for s in steps):
        return None
    newest = max(s for s in steps if s is not None)
    lagging = [f for f in facts if f.step is not None and f.step < newest]
    return _blame(facts, lagging, "behind the others' step", subset=True)


def _cpu_stalled(facts: Sequence[RankFacts], limits: CulpritLimits) -> Culprit | None:
    stalled = [f for f in facts if f.cpu_idle_for >= limits.stuck_after]
    return _blame(facts, stalled, "not using CPU while the others do", subset=True)


def _blame(
    facts: Sequence[RankFacts], found: list[RankFacts], cause: str, *, subset: bool = False
) -> Culprit | None:
    """A `Culprit` of ``found``; comparative causes only when some ranks are not in it."""
    if not found or (subset and len(found) >= len(facts)):
        return None
    return Culprit(tuple(found), cause)


ABSOLUTE_RULES: tuple[Rule, ...] = (_dead, _stopped, _uninterruptible)
COMPARATIVE_RULES: tuple[Rule, ...] = (_lagging_step, _cpu_stalled)
