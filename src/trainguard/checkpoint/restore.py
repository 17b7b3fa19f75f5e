"""Choosing and loading the step to resume from.

The rule (DESIGN §4, reference §b.5): the newest step that every rank can load, memory tier
first (local, then peer), then durable. The controller's agreed step, when there is one, is an
upper bound (steps above it belong to an abandoned timeline). Ranks gather the steps they hold
and try the newest common one; if any rank fails to load it from every tier (checksum mismatch,
missing marker, deleted file) all ranks fall back together to the next older step, so no two
ranks ever resume from different steps. Skipped steps are logged as warnings on the
``trainguard.checkpoint`` logger.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping, Sequence
from typing import Any

from trainguard.checkpoint.base import Restored, Tier, TierName
from trainguard.checkpoint.group import Topology, all_true, common_steps
from trainguard.errors import CheckpointError

log = logging.getLogger("trainguard.checkpoint")


def held_steps(tiers: Sequence[Tier]) -> dict[TierName, set[int]]:
    """Steps each tier holds for this rank; a tier that cannot be listed holds none."""
    held: dict[TierName, set[int]] = {}
    for tier in tiers:
        try:
            held[tier.name] = set(tier.steps())
        except CheckpointError as exc:
            log.warning("checkpoint: cannot list the %s tier, ignoring it: %s", tier.name, exc)
            held[tier.name] = set()
    return held


def restore(
    tiers: Sequence[Tier],
    target: MutableMapping[str, Any],
    *,
    topo: Topology,
    limit: int | None = None,
) -> Restored:
    """Load the newest step every rank can load into ``target``.

    Collective when ``topo`` is distributed: every rank must call it.

    Args:
        tiers: tiers in preference order (memory, peer, durable).
        target: the caller's state dict, filled in place.
        topo: this rank's place in the checkpoint group.
        limit: the controller's agreed step; newer steps are ignored.

    Returns:
        The step, tier and user content restored (step ``None``: nothing loadable).
    """
    held = held_steps(tiers)
    mine = set().union(*held.values()) if held else set()
    if limit is not None:
        mine = {s for s in mine if s <= limit}
    for step in sorted(common_steps(topo, mine), reverse=True):
        outcome = _load_step(step, tiers, held, target)
        if all_true(topo, outcome is not None) and outcome is not None:
            return outcome
        if outcome is not None:
            log.warning("checkpoint: step %d unreadable on another rank; trying older", step)
    return Restored(step=None, tier=TierName.NONE)


def _load_step(
    step: int,
    tiers: Sequence[Tier],
    held: dict[TierName, set[int]],
    target: MutableMapping[str, Any],
) -> Restored | None:
    for tier in tiers:
        if step not in held[tier.name]:
            continue
        try:
            user_content = tier.read(step, target)
        except CheckpointError as exc:
            log.warning("checkpoint: skipping step %d on the %s tier: %s", step, tier.name, exc)
            continue
        return Restored(step=step, tier=tier.name, user_content=user_content)
    return None
