"""The blob ring holding opaque blobs (the MTC server's shards): read back whole, verified,
discarded one step at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainguard.checkpoint.blobring import BlobRing
from trainguard.errors import CheckpointCorrupt


def test_an_opaque_blob_reads_back_byte_for_byte_and_a_flipped_byte_is_refused(
    tmp_path: Path,
) -> None:
    ring = BlobRing(tmp_path, job="ns", rank=3, world_size=4, keep=2)
    ring.write_blob(7, b"shard bytes" * 100)
    meta, blob = ring.read_bytes(7)
    assert blob == b"shard bytes" * 100 and meta.checksum is not None
    with open(ring.dir / meta.slot, "r+b") as handle:
        handle.seek(5)
        handle.write(b"X")
    with pytest.raises(CheckpointCorrupt, match="checksum"):
        ring.read_bytes(7)
    ring.close()


def test_discard_forgets_one_step_and_frees_its_slot(tmp_path: Path) -> None:
    ring = BlobRing(tmp_path, job="ns", rank=0, world_size=1, keep=2)
    ring.write_blob(1, b"a")
    ring.write_blob(2, b"b")
    assert ring.discard(1) is True
    assert ring.discard(1) is False
    assert ring.steps() == [2] and not ring.meta_path(1).exists()
    for step in (3, 4, 5):  # the ring keeps turning with the freed slot
        ring.write_blob(step, bytes([step]))
    assert ring.steps() == [4, 5]
    ring.close()
