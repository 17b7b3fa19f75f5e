"""One scenario suite, run against every tier (memory, peer replica, durable).

Each harness writes steps the way the manager does and can damage them the way faults do
(flip a byte, drop the commit record); the scenarios only use the `Tier` interface and
`restore`, so every tier gets the same guarantees. The peer harness runs two replication
extensions in process (node A pushes to node B over HTTP via FastAPI's TestClient).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import torch
from fastapi import FastAPI

from trainguard import ipc
from trainguard.checkpoint import manifest
from trainguard.checkpoint.base import Tier, TierName, payload
from trainguard.checkpoint.durable import DurableTier
from trainguard.checkpoint.group import Topology
from trainguard.checkpoint.memory import MemoryTier
from trainguard.checkpoint.peer import PeerTier
from trainguard.checkpoint.replication import Replication
from trainguard.checkpoint.report import AgentReporter
from trainguard.checkpoint.restore import restore
from trainguard.checkpoint.tree import flatten
from trainguard.errors import CheckpointCorrupt, CheckpointError

from .conftest import assert_same, fresh, trained

with warnings.catch_warnings():  # starlette's "use httpx2" notice, not ours to fix
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SOLO = Topology(rank=0, world_size=1)


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))


class MemoryHarness:
    def __init__(self, root: Path, keep: int) -> None:
        self.root, self.keep = root, keep
        self.tier = self.open()

    def open(self) -> MemoryTier:
        return MemoryTier(self.root, job="job", rank=0, world_size=1, keep=self.keep)

    def reopen(self) -> Tier:
        self.tier.close()
        self.tier = self.open()
        return self.tier

    def write(self, step: int, state: dict[str, Any], user: Any = None) -> None:
        flat = flatten(payload(state, user))
        self.tier.write(step, flat, flat.skeleton_bytes())
        index = self.tier.pin(step)
        try:
            self.tier.add_checksum(step, index)
        finally:
            self.tier.unpin(index)

    def corrupt(self, step: int) -> None:
        meta = self.tier.meta(step)
        flip_byte(self.tier.dir / meta.slot, meta.tensor_bytes // 2)

    def uncommit(self, step: int) -> None:
        self.tier.meta_path(step).unlink()

    def close(self) -> None:
        self.tier.close()


class DurableHarness:
    def __init__(self, root: Path, keep: int) -> None:
        self.uri, self.keep = f"file://{root}", keep
        self.tier = self.open()

    def open(self) -> DurableTier:
        return DurableTier(self.uri, job="job", rank=0, world_size=1, keep=self.keep)

    def reopen(self) -> Tier:
        self.tier = self.open()
        return self.tier

    def write(self, step: int, state: dict[str, Any], user: Any = None) -> None:
        flat = flatten(payload(state, user))
        assert self.tier.write(step, flat, flat.skeleton_bytes())

    def corrupt(self, step: int) -> None:
        flip_byte(Path(self.tier.step_path(step)) / "__0_0.distcp", 4096 + 17)

    def uncommit(self, step: int) -> None:
        (Path(self.tier.step_path(step)) / manifest.MARKER_NAME).unlink()

    def close(self) -> None:
        pass


class _Node:
    """What the replication extension needs of an agent (``ExtensionContext``'s attributes)."""

    def __init__(self, shm: Path, rank: int, peer_rank: int) -> None:
        self.shm_dir, self.token = shm, None
        self._rank = rank
        self._peers = [SimpleNamespace(rank=peer_rank, url="http://testserver")]

    def status(self) -> Any:
        return SimpleNamespace(assigned_rank=str(self._rank))

    def trainguard(self) -> Any:
        return SimpleNamespace(peers=self._peers)


class _LocalAgent:
    """Stands in for the worker's socket to its agent: messages go straight to the handlers."""

    def __init__(self, replication: Replication) -> None:
        self.handlers = {
            ipc.CKPT_PEER_STEPS: replication.peer_steps,
            ipc.CKPT_FETCH: replication.fetch,
        }

    def request(self, kind: str, **fields: Any) -> dict[str, Any] | None:
        return self.handlers[kind](fields)


class PeerHarness:
    """Node A's memory tier replicated to node B (HTTP in process); reads fetch back from B."""

    def __init__(self, root: Path, keep: int) -> None:
        self.keep = keep
        self.memory = MemoryTier(root / "a", job="job", rank=0, world_size=1, keep=keep)
        self.node_a = Replication(_Node(root / "a", rank=0, peer_rank=1))
        node_b = Replication(_Node(root / "b", rank=1, peer_rank=0))
        app = FastAPI()
        app.include_router(node_b.router())
        self.node_a.http = TestClient(app)  # type: ignore[assignment]
        self.store_b = node_b.replicas
        self.tier = self.reopen()

    def reopen(self) -> Tier:
        agent = cast(AgentReporter, _LocalAgent(self.node_a))
        self.tier = PeerTier(agent, job="job", rank=0, world_size=1)
        return self.tier

    def write(self, step: int, state: dict[str, Any], user: Any = None) -> None:
        flat = flatten(payload(state, user))
        self.memory.write(step, flat, flat.skeleton_bytes())
        index = self.memory.pin(step)
        try:
            self.memory.add_checksum(step, index)
            meta_path = str(self.memory.meta_path(step))
            reply = self.node_a.replicate({"meta_path": meta_path, "keep": self.keep})
            assert reply["replicated"]
        finally:
            self.memory.unpin(index)

    def corrupt(self, step: int) -> None:
        flip_byte(self.store_b.dir("job", 0) / f"step_{step}.bin", 100)

    def uncommit(self, step: int) -> None:
        self.store_b.meta_path("job", 0, step).unlink()

    def close(self) -> None:
        self.memory.close()


HARNESSES = {"memory": MemoryHarness, "durable": DurableHarness, "peer": PeerHarness}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, shm_root: Path, tmp_path: Path) -> Iterator[Any]:
    root = tmp_path if request.param == "durable" else shm_root
    made = HARNESSES[request.param](root, keep=3)
    try:
        yield made
    finally:
        made.close()


def snapshot(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """A deep copy of model + optimizer state (what the restore must reproduce)."""
    state = {"model": model.state_dict(), "optim": optimizer.state_dict()}
    return torch.utils._pytree.tree_map(  # type: ignore[attr-defined,no-any-return]
        lambda v: v.clone() if isinstance(v, torch.Tensor) else v, state
    )


def test_round_trip_is_bit_exact_into_fresh_objects(harness: Any) -> None:
    model, optimizer = trained()
    expected = snapshot(model, optimizer)
    harness.write(5, {"model": model.state_dict(), "optim": optimizer.state_dict()}, {"b": 5})
    other, other_optim = fresh()
    target = {"model": other.state_dict(), "optim": other_optim.state_dict()}
    user = harness.tier.read(5, target)
    other.load_state_dict(target["model"])
    other_optim.load_state_dict(target["optim"])
    assert user == {"b": 5}
    assert_same(expected, {"model": other.state_dict(), "optim": other_optim.state_dict()})


def test_odd_values_survive(harness: Any) -> None:
    state = {
        "bf16": torch.arange(10, dtype=torch.bfloat16),
        "scalar": torch.tensor(3.5),
        "empty": torch.empty(0, 3),
        "ints": {1: torch.tensor([1, 2, 3]), "n": 7},
        "tuple": (torch.ones(2, dtype=torch.int8), "x"),
        "noncontig": torch.arange(12.0).reshape(3, 4).t(),
        "text": "hello",
    }
    harness.write(1, state)
    target: dict[str, Any] = {}
    harness.tier.read(1, target)
    expected = dict(state, noncontig=state["noncontig"].contiguous())
    assert_same(expected, target)


def test_reads_in_place_into_matching_tensors(harness: Any) -> None:
    weight = torch.randn(4, 4)
    harness.write(1, {"w": weight})
    mine = torch.zeros(4, 4)
    target = {"w": mine}
    harness.tier.read(1, target)
    assert target["w"] is mine and torch.equal(mine, weight)


def test_steps_are_listed_and_retained(harness: Any) -> None:
    for step in (10, 20, 30, 40):
        harness.write(step, {"w": torch.full((3,), float(step))})
    assert harness.tier.steps() == [20, 30, 40]
    reopened = harness.reopen()
    assert reopened.steps() == [20, 30, 40]
    target: dict[str, Any] = {}
    reopened.read(30, target)
    assert torch.equal(target["w"], torch.full((3,), 30.0))


def test_corrupt_shard_is_refused(harness: Any) -> None:
    harness.write(1, {"w": torch.randn(4096)})
    harness.corrupt(1)
    with pytest.raises(CheckpointCorrupt):
        harness.tier.read(1, {})


def test_restore_skips_corrupt_step_with_a_warning(
    harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    harness.write(1, {"w": torch.full((4096,), 1.0)}, "one")
    harness.write(2, {"w": torch.full((4096,), 2.0)}, "two")
    harness.corrupt(2)
    target: dict[str, Any] = {}
    with caplog.at_level(logging.WARNING, logger="trainguard.checkpoint"):
        restored = restore([harness.tier], target, topo=SOLO)
    assert (restored.step, restored.user_content) == (1, "one")
    assert torch.equal(target["w"], torch.full((4096,), 1.0))
    assert any("skipping step 2" in r.getMessage() for r in caplog.records)


def test_step_without_commit_record_does_not_exist(harness: Any) -> None:
    harness.write(1, {"w": torch.ones(8)})
    harness.write(2, {"w": torch.ones(8) * 2})
    harness.uncommit(2)
    tier = harness.reopen()
    assert tier.steps() == [1]
    restored = restore([tier], {}, topo=SOLO)
    assert restored.step == 1


def test_limit_excludes_newer_steps(harness: Any) -> None:
    for step in (1, 2, 3):
        harness.write(step, {"w": torch.ones(2) * step})
    target: dict[str, Any] = {}
    restored = restore([harness.tier], target, topo=SOLO, limit=2)
    assert restored.step == 2 and torch.equal(target["w"], torch.ones(2) * 2)


def test_empty_tier_restores_nothing(harness: Any) -> None:
    restored = restore([harness.tier], {}, topo=SOLO)
    assert (restored.step, restored.tier) == (None, TierName.NONE)


def test_reading_a_missing_step_is_an_error(harness: Any) -> None:
    with pytest.raises(CheckpointError):
        harness.tier.read(99, {})
