"""Checksums: CRC-32C for new saves, zlib CRC-32 still verified, anything else refused."""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
import torch

from trainguard.checkpoint import checksum
from trainguard.checkpoint.base import payload
from trainguard.checkpoint.memory import MemoryTier
from trainguard.checkpoint.tree import flatten
from trainguard.errors import CheckpointCorrupt, CheckpointError


def test_crc32c_check_value_and_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    assert checksum.of_buffer(b"123456789") == "e3069283"  # RFC 3720's check value
    data = bytes(range(256)) * 1000
    whole = checksum.of_buffer(data)
    monkeypatch.setattr(checksum, "CHUNK", 1000)
    assert checksum.of_buffer(data) == whole
    assert checksum.of_stream(io.BytesIO(data)) == (len(data), whole)
    assert checksum.of_buffer(data, "crc32") == f"{zlib.crc32(data):08x}"


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(CheckpointError, match="unknown checksum algorithm 'md5'"):
        checksum.of_buffer(b"x", "md5")
    with pytest.raises(CheckpointError, match=r"meta\.json: unknown checksum algorithm"):
        checksum.check_algorithm("md5", source="meta.json")


def _saved_step(root: Path) -> tuple[MemoryTier, dict[str, Any]]:
    tier = MemoryTier(root, job="job", rank=0, world_size=1, keep=2)
    flat = flatten(payload({"w": torch.arange(4096, dtype=torch.float32)}, None))
    tier.write(1, flat, flat.skeleton_bytes())
    index = tier.pin(1)
    try:
        tier.add_checksum(1, index)
    finally:
        tier.unpin(index)
    return tier, json.loads(tier.meta_path(1).read_text())


def test_memory_step_checksummed_with_zlib_crc32_still_restores(tmp_path: Path) -> None:
    tier, meta = _saved_step(tmp_path)
    assert meta["algorithm"] == "crc32c"
    blob = (tier.dir / meta["slot"]).read_bytes()[: meta["tensor_bytes"] + meta["skeleton_bytes"]]
    meta |= {"algorithm": "crc32", "checksum": f"{zlib.crc32(blob):08x}"}
    tier.meta_path(1).write_text(json.dumps(meta))
    target: dict[str, Any] = {}
    tier.read(1, target)
    assert torch.equal(target["w"], torch.arange(4096, dtype=torch.float32))
    meta["checksum"] = "00000000"
    tier.meta_path(1).write_text(json.dumps(meta))
    with pytest.raises(CheckpointCorrupt, match="checksum"):
        tier.read(1, {})
    tier.close()
