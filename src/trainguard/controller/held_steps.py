"""Checkpoint discovery across pods (reference §b.5): which step every rank can resume from.

Each agent reports the steps its workers hold (``/status.progress``). The controller keeps the
last report per node rank — a pod replaced after a node fault reports nothing at first, but its
predecessor's steps survive as peer replicas and in the durable tier — and hands the newest
step held by every rank to ``/start``. Workers still agree among themselves before loading
(the hint is an upper bound), so a step that turns out to be unreadable costs one older step,
never a split-brain resume.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trainguard.agent.protocol import PROGRESS_PREFIX, AgentStatus
from trainguard.controller.context import PodView


def held_steps(status: AgentStatus | None) -> list[int] | None:
    """Steps an agent says its workers hold, or None when it reported none."""
    if status is None or not status.progress:
        return None
    entry = status.progress.get(PROGRESS_PREFIX)
    if not isinstance(entry, Mapping):
        return None
    steps = entry.get("steps")
    if isinstance(steps, list):
        return sorted({int(s) for s in steps})
    count = entry.get("progressCount")
    return [int(count)] if isinstance(count, int) else None


def remember(known: Mapping[str, list[int]], pods: Iterable[PodView]) -> dict[str, list[int]]:
    """Known steps per node rank, updated with every active pod that reported some."""
    updated = {rank: list(steps) for rank, steps in known.items()}
    for pod in pods:
        steps = held_steps(pod.status)
        if pod.active and steps:
            updated[str(pod.record.node_rank)] = steps
    return updated


def agreed_step(known: Mapping[str, list[int]], nnodes: int) -> int | None:
    """The newest step every node rank holds, or None."""
    if nnodes < 1 or any(str(rank) not in known for rank in range(nnodes)):
        return None
    common = set(known["0"])
    for rank in range(1, nnodes):
        common &= set(known[str(rank)])
    return max(common) if common else None


def progress_payload(step: int | None) -> dict[str, Any]:
    """The ``progress`` field of ``/start`` for an agreed step."""
    if step is None:
        return {}
    return {PROGRESS_PREFIX: {"progressCount": step, "progressData": f"step_{step}"}}
