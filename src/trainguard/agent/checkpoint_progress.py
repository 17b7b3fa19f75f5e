"""Checkpoint progress of this node's workers: which steps every local rank holds.

Workers report each save over the local socket (``ckpt_info_update {step, tier, path, held}``).
A step counts for this node only when *every* local rank holds it on some tier (HyperPod's
``CheckpointTracker`` rule, reference §b.5); ``/status.progress`` reports the newest such step
and the full list, so the controller can intersect the lists of all nodes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from trainguard.agent.protocol import PROGRESS_PREFIX


class ProgressTracker:
    """Held steps per local rank and tier, fed from the socket thread, read by ``/status``.

    Args:
        nproc: local ranks that must all hold a step before it counts.
    """

    def __init__(self, nproc: int) -> None:
        self.nproc = nproc
        self._held: dict[int, dict[str, set[int]]] = {}
        self._paths: dict[int, str] = {}
        self._lock = threading.Lock()

    def update(
        self,
        local_rank: int,
        *,
        step: int,
        tier: str,
        path: str | None = None,
        held: Iterable[int] | None = None,
    ) -> None:
        """Record a finished save; ``held`` (when given) replaces what the tier holds."""
        if not 0 <= local_rank < self.nproc:
            raise ValueError(f"local_rank {local_rank} is not in 0..{self.nproc - 1}")
        with self._lock:
            tiers = self._held.setdefault(local_rank, {})
            steps = {int(s) for s in held} if held is not None else set(tiers.get(tier, set()))
            steps.add(int(step))
            tiers[tier] = steps
            if path and local_rank == 0:
                self._paths[int(step)] = path
            self._paths.setdefault(int(step), path or f"step_{step}")

    def steps(self) -> list[int]:
        """Steps every local rank holds on some tier, ascending."""
        with self._lock:
            if len(self._held) < self.nproc:
                return []
            per_rank = [set().union(*tiers.values()) for tiers in self._held.values()]
        common: set[int] = set.intersection(*per_rank) if per_rank else set()
        return sorted(common)

    def payload(self) -> dict[str, Any] | None:
        """``/status.progress`` (None before any step is held everywhere)."""
        steps = self.steps()
        if not steps:
            return None
        newest = steps[-1]
        with self._lock:
            path = self._paths.get(newest, f"step_{newest}")
        return {PROGRESS_PREFIX: {"progressCount": newest, "progressData": path, "steps": steps}}
