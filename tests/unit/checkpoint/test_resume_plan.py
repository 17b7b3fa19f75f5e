"""Which copies a resume may use: the memory tier only at its own world size, one run per step.

The choice is a pure function of every rank's offer, so the rules are tested on offers
directly; the record (world sizes, reason) through a real manager in one process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.unit.checkpoint.test_tier_contract import PeerHarness
from trainguard.checkpoint import CheckpointManager
from trainguard.checkpoint.peer import PeerTier
from trainguard.checkpoint.resume_plan import (
    ANY,
    DURABLE,
    FAST,
    Choice,
    RankOffer,
    StepCopies,
    choices,
    memory_sizes,
    size_reason,
)
from trainguard.errors import CheckpointCorrupt


def in_memory(run: str, durable_run: str) -> StepCopies:
    """A memory copy saved by ``run`` beside a durable copy saved by ``durable_run``."""
    return StepCopies(
        fast=True, durable=True, generations=frozenset({run}), durable_generation=durable_run
    )


MEMORY_G1 = in_memory("g1", "g1")


def offers(
    *per_rank: dict[int, StepCopies], sizes: dict[int, int] | None = None
) -> list[RankOffer]:
    return [RankOffer(steps=steps, other_sizes=sizes or {}) for steps in per_rank]


def test_fast_copies_of_one_run_come_first_then_the_same_step_durable() -> None:
    plan = choices(offers({20: MEMORY_G1, 10: MEMORY_G1}, {20: MEMORY_G1, 10: MEMORY_G1}))
    assert plan == [
        Choice(20, FAST, "g1"),
        Choice(20, DURABLE),
        Choice(10, FAST, "g1"),
        Choice(10, DURABLE),
    ]


def test_a_step_not_every_rank_holds_is_never_chosen() -> None:
    assert choices(offers({20: MEMORY_G1, 10: MEMORY_G1}, {10: MEMORY_G1})) == [
        Choice(10, FAST, "g1"),
        Choice(10, DURABLE),
    ]


def test_a_rank_without_memory_reads_the_durable_copy_of_the_same_run() -> None:
    replaced = StepCopies(durable=True, durable_generation="g1")
    assert choices(offers({20: MEMORY_G1}, {20: replaced}))[0] == Choice(20, ANY, "g1")


def test_memory_copies_of_different_runs_are_never_mixed() -> None:
    """A node back after a shrink holds step 20 as the bigger run saved it; the smaller run
    saved step 20 again (differently): every rank reads the durable copy."""
    stale = in_memory("g1", "g3")
    resaved = StepCopies(durable=True, durable_generation="g3")
    assert choices(offers({20: resaved}, {20: resaved}, {20: stale})) == [Choice(20, DURABLE)]
    assert choices(offers({20: in_memory("g3", "g3")}, {20: stale})) == [Choice(20, DURABLE)]


def test_copies_of_unknown_runs_count_as_one_run_only_on_the_fast_tiers() -> None:
    legacy = StepCopies(fast=True, durable=True)
    only_durable = StepCopies(durable=True)
    assert choices(offers({5: legacy}, {5: legacy}))[0] == Choice(5, FAST, None)
    assert choices(offers({5: legacy}, {5: only_durable})) == [Choice(5, DURABLE)]


def test_size_reason_names_the_other_sizes_and_the_size_now() -> None:
    ranks = offers({}, {}, sizes={3: 110, 2: 130})
    ranks.append(RankOffer(steps={}, other_sizes={3: 120}))
    assert size_reason(ranks, 2) == "memory tier holds world size 3 (step 120); job now runs 2"
    assert size_reason(offers({}, sizes={2: 130}), 2) is None
    assert size_reason(ranks, 2, restored=121) is None  # nothing as new was passed over


def test_memory_sizes_reads_every_rank_directory_of_the_node(shm_root: Path) -> None:
    for rank in (0, 1):
        with CheckpointManager(shm_dir=shm_root, job="j", rank=rank, world_size=2) as manager:
            manager.save(10, {"w": torch.ones(3)})
            manager.save(20, {"w": torch.ones(3)})
            manager.wait()
    assert memory_sizes(shm_root / "j") == {2: 20}
    assert memory_sizes(shm_root / "absent") == {}


def test_a_resume_at_another_size_skips_memory_and_says_why(shm_root: Path, tmp_path: Path) -> None:
    """Rank 0 of 2 (no process group: it commits its own files) saves durable step 2 and
    memory step 3; the job comes back with one rank."""
    uri = str(tmp_path / "durable")
    options: dict[str, Any] = {"shm_dir": shm_root, "job": "j", "memory_every": 1}
    with CheckpointManager(uri, rank=0, world_size=2, durable_every=2, **options) as manager:
        for step in (1, 2, 3):
            manager.save(step, {"w": torch.full((4,), float(step))}, user_content={"at": step})
        manager.wait()
    with CheckpointManager(uri, rank=0, world_size=1, **options) as manager:
        target: dict[str, Any] = {"w": torch.zeros(4)}
        assert manager.load_latest(target) == 2
        assert torch.equal(target["w"], torch.full((4,), 2.0))
        record = manager.restored
        assert record is not None and record.user_content == {"at": 2}
        assert (str(record.tier), record.world_size, record.saved_world_size) == ("durable", 1, 2)
        assert record.reason == "memory tier holds world size 2 (step 3); job now runs 1"
    with CheckpointManager(uri, rank=0, world_size=1, **options) as manager:
        manager.save(4, {"w": torch.full((4,), 4.0)}, force=True)
        manager.wait()
    with CheckpointManager(uri, rank=0, world_size=1, **options) as manager:
        assert manager.load_latest({"w": torch.zeros(4)}) == 4
        record = manager.restored
        assert record is not None and (str(record.tier), record.reason) == ("memory", None)
        assert (record.world_size, record.saved_world_size) == (1, 1)


def test_peer_replicas_serve_only_their_world_size_and_their_run(shm_root: Path) -> None:
    harness = PeerHarness(shm_root, keep=2)
    try:
        harness.memory.generation = "g1"
        harness.write(1, {"w": torch.ones(4)})
        agent = harness.tier.reporter
        assert PeerTier(agent, job="job", rank=0, world_size=2).steps() == []
        assert harness.tier.steps() == [1]
        with pytest.raises(CheckpointCorrupt, match="saved by run g1"):
            harness.tier.read(1, {}, generation="g2")  # type: ignore[call-arg]
        target: dict[str, Any] = {}
        harness.tier.read(1, target, generation="g1")  # type: ignore[call-arg]
        assert torch.equal(target["w"], torch.ones(4))
    finally:
        harness.close()
