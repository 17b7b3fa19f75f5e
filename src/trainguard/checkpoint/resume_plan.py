"""Which copies of which step the ranks resume from, so a resume never mixes layouts or runs.

Every rank publishes what it can load (`RankOffer`: per step, whether it holds a *fast* copy —
memory tier or peer replica — and the durable copy, with the run ids that saved them); the
offers are gathered and every rank computes the same ordered `Choice` list from them, which
`trainguard.checkpoint.restore` tries in order, all ranks together.

**The memory tier serves only the world size that saved it.** A memory shard is one rank's
state as that rank held it: for DDP a full replica, for FSDP/DTensor or ZeRO a slice of the
global tensors, plus per-rank values (RNG state, a sampler's position) that look exactly like
replicated ones. After a resize the controller renumbers node ranks 0..n-1, so the shards a
node holds were written under its *old* ranks: new rank r may sit on a node with no shard of
old rank r, or with one of another old rank. Serving a shard across sizes is right only for
state known to be replicated, and a shard cannot say that it is; a wrong guess puts one rank's
slice in another's place with no error at all. The durable tier (DCP) stores which part of the
global tensor every byte is, so it reshards to any size. Hence memory and peer copies count
only at the size that saved them (`ShardMeta.world_size`), the durable copy at any size, and
a memory tier that held steps of another size is named in the resume record (`size_reason`).

**One run per step.** Two copies with the same step number are the same state only when one
run saved both. After a shrink and a grow, a returning node can hold step N as the run before
the shrink saved it, while the others hold step N as the smaller run saved it again (it
resumed from an older durable step, so its step N is different). So fast copies are used only
when every memory copy of the step carries the same run id (`ShardMeta.generation`, one per
start of the workers); a rank without a fast copy may read the durable copy beside them only
when that copy names the same run; otherwise every rank reads the one durable copy, which a
single collective save wrote. A step complete on the durable tier is complete at any size: its
marker says every rank of the saving run wrote it, however many ranks read it now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainguard.checkpoint import manifest
from trainguard.checkpoint.base import Tier, TierName
from trainguard.errors import CheckpointError

FAST = frozenset({TierName.MEMORY, TierName.PEER})
DURABLE = frozenset({TierName.DURABLE})
ANY = FAST | DURABLE


@dataclass(frozen=True)
class StepCopies:
    """What one rank holds of one step.

    Attributes:
        fast: a memory-tier or peer copy saved at the current world size.
        durable: the committed durable copy.
        generations: run ids of the fast copies held locally (memory tier).
        durable_generation: run id in the durable manifest (``None``: unknown).
    """

    fast: bool = False
    durable: bool = False
    generations: frozenset[str] = frozenset()
    durable_generation: str | None = None


@dataclass(frozen=True)
class RankOffer:
    """One rank's copies per step, and memory steps it holds at other world sizes.

    Attributes:
        steps: step -> copies this rank can load.
        other_sizes: world size -> newest memory step saved at it (not offered).
    """

    steps: dict[int, StepCopies]
    other_sizes: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Choice:
    """A step, the tiers every rank may load it from (tried in the manager's order: memory,
    peer, durable) and the run the fast copies come from (``None``: unknown)."""

    step: int
    tiers: frozenset[TierName]
    generation: str | None = None


def offer(
    tiers: Sequence[Tier],
    held: Mapping[TierName, set[int]],
    *,
    limit: int | None,
    other_sizes: dict[int, int],
) -> RankOffer:
    """This rank's `RankOffer` from what its tiers hold (steps above ``limit`` left out)."""
    by_name = {tier.name: tier for tier in tiers}
    steps: dict[int, StepCopies] = {}
    candidates: set[int] = set()
    candidates.update(*held.values())
    for step in candidates:
        if limit is not None and step > limit:
            continue
        fast = any(step in held.get(name, set()) for name in FAST)
        durable = step in held.get(TierName.DURABLE, set())
        steps[step] = StepCopies(
            fast=fast,
            durable=durable,
            generations=_memory_generations(by_name.get(TierName.MEMORY), step, held),
            durable_generation=_durable_generation(by_name.get(TierName.DURABLE), step, durable),
        )
    return RankOffer(steps=steps, other_sizes=other_sizes)


def _memory_generations(
    tier: Tier | None, step: int, held: Mapping[TierName, set[int]]
) -> frozenset[str]:
    if tier is None or step not in held.get(TierName.MEMORY, set()):
        return frozenset()
    meta: Any = getattr(tier, "meta", None)
    try:
        generation = meta(step).generation if meta is not None else None
    except CheckpointError:  # evicted since it was listed: the read will say so
        return frozenset()
    return frozenset({generation}) if generation else frozenset()


def _durable_generation(tier: Tier | None, step: int, durable: bool) -> str | None:
    reader: Any = getattr(tier, "generation_of", None)
    if not durable or reader is None:
        return None
    try:
        generation = reader(step)
    except CheckpointError:
        return None
    return str(generation) if generation is not None else None


def choices(offers: Sequence[RankOffer]) -> list[Choice]:
    """What to try, newest step first; the same list on every rank for the same offers."""
    if not offers:
        return []
    common = set(offers[0].steps).intersection(*(set(o.steps) for o in offers[1:]))
    found: list[Choice] = []
    for step in sorted(common, reverse=True):
        copies = [o.steps[step] for o in offers]
        fast_runs: frozenset[str] = frozenset().union(*(c.generations for c in copies))
        if all(c.fast for c in copies) and len(fast_runs) <= 1:
            found.append(Choice(step, FAST, next(iter(fast_runs), None)))
        elif _mixable(copies, fast_runs):
            found.append(Choice(step, ANY, next(iter(fast_runs))))
        if all(c.durable for c in copies):
            found.append(Choice(step, DURABLE))
    return found


def _mixable(copies: list[StepCopies], fast_runs: frozenset[str]) -> bool:
    """Fast copies on some ranks, the durable copy on the rest, all saved by one run."""
    if len(fast_runs) != 1:
        return False
    (run,) = fast_runs
    return all(
        (c.fast or c.durable) and (not c.durable or c.durable_generation == run) for c in copies
    )


def memory_sizes(job_dir: Path) -> dict[int, int]:
    """World size -> newest step of the memory shards of every rank under ``job_dir``.

    Reads the shard metas of *all* ranks on this node, not only this rank's: after a resize
    the node's shards sit under its old ranks.
    """
    sizes: dict[int, int] = {}
    for path in job_dir.glob("rank_*/step_*.json"):
        try:
            meta = manifest.read_meta(path)
        except CheckpointError:
            continue
        sizes[meta.world_size] = max(meta.step, sizes.get(meta.world_size, meta.step))
    return sizes


def size_reason(
    offers: Sequence[RankOffer], world_size: int, *, restored: int | None = None
) -> str | None:
    """``"memory tier holds world size 3 (step 110); job now runs 2"``, or None.

    Only memory steps from the ``restored`` step on count: an older one was not passed over,
    and shards of long-gone sizes linger in rank directories no rank uses any more.
    """
    sizes: dict[int, int] = {}
    for rank_offer in offers:
        for size, step in rank_offer.other_sizes.items():
            if restored is None or step >= restored:
                sizes[size] = max(step, sizes.get(size, step))
    sizes.pop(world_size, None)
    if not sizes:
        return None
    held = ", ".join(f"world size {size} (step {sizes[size]})" for size in sorted(sizes))
    return f"memory tier holds {held}; job now runs {world_size}"
