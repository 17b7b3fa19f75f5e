"""Resuming at another world size, with real gloo ranks and DDP (issue 19's checkpoint half).

A job saved by 3 ranks resumes with 2 (a node lost, no spare) and grows back to 3: the durable
tier reshards the DDP model *and* the Adam state to every rank of the new world, the memory
tier serves only the size that saved it and the resume record says why it was passed over,
and a returning rank's memory shard of a step the smaller run saved again is never mixed in.
A damaged durable step after a resize is never loaded: the ranks fall back together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Workers

pytestmark = pytest.mark.slow


def expected(out: Path, step: int) -> dict[str, str]:
    """What every rank held after saving ``step`` (DDP keeps the ranks' replicas equal)."""
    digests = [json.loads(p.read_text()) for p in sorted(out.glob(f"expected_*_{step}.json"))]
    assert digests and all(d == digests[0] for d in digests), "DDP replicas differ"
    return digests[0]


def assert_all(results: list[dict[str, Any]], **fields: Any) -> None:
    for rank, result in enumerate(results):
        got = {key: result[key] for key in fields}
        assert got == fields, (rank, result["reason"])


def test_shrink_then_grow_reshards_durable_and_skips_memory(
    workers: Workers, tmp_path: Path
) -> None:
    uri = f"file://{tmp_path}/durable"
    at3, at2 = tmp_path / "at3", tmp_path / "at2"
    at3.mkdir(), at2.mkdir()
    ddp = ("--ddp",)
    workers.run(3, "save", *ddp, "--uri", uri, "--out", str(at3), "--durable-every", "2")
    # (At an unchanged size the memory tier serves: test_checkpoint_processes, 2 ranks.)
    shrunk = workers.load(2, uri, *ddp, "--out", str(at2), mode="continue")
    assert_all(shrunk, step=2, tier="durable", world_size=2, saved_world_size=3)
    assert all(r["digest"] == expected(at3, 2) for r in shrunk), "durable step 2 resharded 3->2"
    said = "memory tier holds world size 3 (step 3); job now runs 2"
    assert all(said in r["reason"] for r in shrunk)

    # Rank 2's memory still holds step 3 as the 3-rank run saved it; the 2-rank run saved its
    # own step 3 (other data per rank, so another state) to memory and the durable tier.
    assert expected(at2, 3) != expected(at3, 3)
    grown = workers.load(3, uri, *ddp)
    assert_all(grown, step=3, tier="durable", world_size=3, saved_world_size=2)
    assert all(r["digest"] == expected(at2, 3) for r in grown), "a stale memory shard was mixed in"
    assert all("world size 2 (step 3); job now runs 3" in r["reason"] for r in grown)


def test_damaged_durable_step_after_a_resize_is_never_loaded(
    workers: Workers, tmp_path: Path
) -> None:
    uri = f"file://{tmp_path}/durable"
    workers.run(2, "save", "--ddp", "--uri", uri, "--out", str(tmp_path), "--steps", "2")
    job = tmp_path / "durable" / "itest"
    flip_a_byte(largest_shard(job / "step_2"))

    (resumed,) = workers.load(1, uri, "--ddp")
    assert (resumed["step"], resumed["tier"], resumed["saved_world_size"]) == (1, "durable", 2)
    assert resumed["digest"] == expected(tmp_path, 1)
    assert "step 2 (durable) unreadable" in resumed["reason"]

    largest_shard(job / "step_1").unlink()
    (fresh,) = workers.load(1, uri, "--ddp")
    assert (fresh["step"], fresh["tier"]) == (None, "none")
    assert fresh["untouched"], "a failed load left part of a step in the model"
    assert "step 1 (durable) unreadable" in fresh["reason"]
    assert "memory tier holds world size 2" in fresh["reason"]


def largest_shard(step_dir: Path) -> Path:
    return max(step_dir.glob("*.distcp"), key=lambda p: p.stat().st_size)


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
