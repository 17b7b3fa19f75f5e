"""Choosing and loading the step to resume from.

The rule (DESIGN §4, reference §b.5): the newest step that every rank can load, memory tier
first (local, then peer), then durable. The controller's agreed step, when there is one, is an
upper bound (steps above it belong to an abandoned timeline). Ranks gather what they hold and
compute the same list of (step, tiers) choices (`trainguard.checkpoint.resume_plan`: the memory
tier only at the world size that saved it, never copies of different runs side by side); if
any rank fails to load a choice (checksum mismatch, missing marker, deleted file) all ranks
move on to the next one together — the same step from the durable tier, then older steps — so
no two ranks ever resume from different steps or runs. Skipped steps are logged as warnings on
the ``trainguard.checkpoint`` logger and named in the `Restored` record's ``reason``.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

from trainguard.checkpoint.base import Restored, Tier, TierName
from trainguard.checkpoint.group import Topology, all_true, gather_all
from trainguard.checkpoint.resume_plan import FAST, Choice, choices, memory_sizes, offer
from trainguard.checkpoint.resume_plan import size_reason as size_change
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
    memory_dir: Path | None = None,
) -> Restored:
    """Load the newest step every rank can load into ``target``.

    Collective when ``topo`` is distributed: every rank must call it.

    Args:
        tiers: tiers in preference order (memory, peer, durable).
        target: the caller's state dict, filled in place.
        topo: this rank's place in the checkpoint group.
        limit: the controller's agreed step; newer steps are ignored.
        memory_dir: the job's memory-tier directory on this node, to tell (in the record)
            that it held steps of another world size.

    Returns:
        The step, tier, user content, world sizes and, when a tier or a newer step was
        passed over, the reason (step ``None``: nothing loadable).
    """
    sizes = memory_sizes(memory_dir) if memory_dir is not None else {}
    held = held_steps(tiers)
    mine = offer(tiers, held, limit=limit, other_sizes=sizes)
    offers = gather_all(topo, mine)
    passed: list[str] = []
    outcome: Restored | None = None
    for choice in choices(offers):
        outcome = _load_choice(choice, tiers, held, target)
        if all_true(topo, outcome is not None) and outcome is not None:
            break
        if outcome is not None:
            log.warning("checkpoint: step %d unreadable on another rank; trying on", choice.step)
        passed.append(f"step {choice.step} ({_tiers_text(choice)}) unreadable on a rank")
        outcome = None
    fresh = Restored(step=None, tier=TierName.NONE)
    return _with_record(outcome or fresh, offers, passed, topo=topo, tiers=tiers)


def _load_choice(
    choice: Choice,
    tiers: Sequence[Tier],
    held: dict[TierName, set[int]],
    target: MutableMapping[str, Any],
) -> Restored | None:
    for tier in tiers:
        if tier.name not in choice.tiers or choice.step not in held[tier.name]:
            continue
        try:
            user_content = _read(tier, choice, target)
        except CheckpointError as exc:
            log.warning(
                "checkpoint: skipping step %d on the %s tier: %s", choice.step, tier.name, exc
            )
            continue
        return Restored(step=choice.step, tier=tier.name, user_content=user_content)
    return None


def _read(tier: Tier, choice: Choice, target: MutableMapping[str, Any]) -> Any:
    """Read one copy; a peer replica must come from the run the choice names."""
    if tier.name == TierName.PEER and choice.generation is not None:
        return tier.read(choice.step, target, generation=choice.generation)  # type: ignore[call-arg]
    return tier.read(choice.step, target)


def _tiers_text(choice: Choice) -> str:
    return "durable" if choice.tiers.isdisjoint(FAST) else "memory/peer"


def _with_record(
    restored: Restored,
    offers: Sequence[Any],
    passed: list[str],
    *,
    topo: Topology,
    tiers: Sequence[Tier],
) -> Restored:
    """``restored`` with the world sizes and the reason filled in."""
    reasons = list(passed)
    if restored.tier not in FAST:
        changed = size_change(offers, topo.world_size, restored=restored.step)
        if changed is not None:
            reasons.insert(0, changed)
    saved = topo.world_size if restored.tier in FAST else _saved_size(restored, tiers)
    return Restored(
        step=restored.step,
        tier=restored.tier,
        user_content=restored.user_content,
        world_size=topo.world_size,
        saved_world_size=saved,
        reason="; ".join(reasons) or None,
    )


def _saved_size(restored: Restored, tiers: Sequence[Tier]) -> int | None:
    if restored.step is None:
        return None
    durable: Any = next((t for t in tiers if t.name == TierName.DURABLE), None)
    reader = getattr(durable, "saved_world_size", None)
    try:
        return int(reader(restored.step)) if reader is not None else None
    except CheckpointError:  # the step was loaded; only its record is unreadable now
        return None
