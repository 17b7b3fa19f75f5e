"""Blame a stalled job on the right rank: agents' worker facts in, an `ActiveFault` out.

A log rule that sees no progress fires on every pod of a hung job, because the ranks that wait
in a collective go quiet too; whichever pod reports first is chance. Detection therefore asks
`trainguard.policy.culprit` which rank stands out across *all* pods of the job (stopped, dead,
in ``D``, or its CPU time or step standing still while the others move) and names that rank's
pod and node in the fault, so the event, the condition, ``latestFaultyPodInstanceList`` and
repeat-offender avoidance all point at it. When no rank stands out, the fault says so and
names nobody: avoidance of a healthy node is worse than no avoidance.
"""

from __future__ import annotations

from collections.abc import Sequence

from trainguard.controller.context import PodView
from trainguard.controller.state import ActiveFault
from trainguard.policy.culprit import Culprit, CulpritLimits, RankFacts, find_culprit

CULPRIT_UNKNOWN = "culprit unknown"


def rank_facts(pods: Sequence[PodView]) -> tuple[list[RankFacts], bool]:
    """Facts of every worker the active pods reported, and whether every pod reported them."""
    facts: list[RankFacts] = []
    complete = True
    for pod in pods:
        extra = pod.status.trainguard if pod.status else None
        workers = extra.workers if extra else []
        complete = complete and bool(workers)
        facts += [
            RankFacts(
                rank=w.global_rank,
                pod=pod.name,
                node=pod.record.node,
                state=w.state,
                state_for=max(0.0, w.sampled_at - w.state_since),
                cpu_idle_for=max(0.0, w.sampled_at - w.cpu_since),
                step=w.step,
            )
            for w in workers
        ]
    return facts, complete


def stall_fault(
    pods: Sequence[PodView],
    *,
    reason: str,
    reported: str,
    detected_at: float,
    now: float,
    limits: CulpritLimits | None = None,
) -> ActiveFault:
    """The fault of a stalled job, blamed on the culprit among ``pods`` (or on nobody).

    Args:
        pods: every active pod of the job.
        reason: the job-level reason (``LogStateHanging_<rule>``, ...).
        reported: what the first agent to notice said (kept at the end of the message).
        detected_at: when that agent noticed.
        now: the controller's wall clock.
        limits: culprit thresholds.
    """
    facts, complete = rank_facts(pods)
    found = find_culprit(facts, complete=complete, limits=limits)
    fault = ActiveFault(
        reason=reason, message="", detected_at=detected_at, observed_at=now, pods=[], ranks=[]
    )
    if isinstance(found, Culprit):
        fault.pods, fault.ranks, fault.nodes = found.pods, found.rank_list, found.nodes
        fault.message = f"{describe(found)}; reported by {reported}"
    else:
        fault.message = f"Hang: {CULPRIT_UNKNOWN} ({found.why}); reported by {reported}"
    return fault


def describe(culprit: Culprit) -> str:
    """``Culprit rank 2 (pod p-1 on node-1): stopped (state T for 16 s, ...)``, one per rank."""
    parts = []
    for f in sorted(culprit.ranks, key=lambda r: r.rank):
        detail = f"state {f.state or 'gone'} for {f.state_for:.0f} s"
        detail += f", CPU idle for {f.cpu_idle_for:.0f} s"
        if f.step is not None:
            detail += f", last step {f.step}"
        parts.append(f"rank {f.rank} (pod {f.pod} on {f.node}): {culprit.cause} ({detail})")
    return "Culprit " + "; ".join(parts)
