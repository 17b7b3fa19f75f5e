"""The memory tier: each rank's latest steps as tensors in node-local shared memory.

`MemoryTier` is a `trainguard.checkpoint.blobring.BlobRing` (the ring of slot files, commit by
meta rename, retention, pins, checksums; no torch) whose blobs hold a flattened state: every
tensor copied straight into a free slot (``copy_`` into a view of the mapping), then the
pickled skeleton. A restore hands out views of the mapping, so it copies each tensor once, into
the caller's state. How one step lies inside its slot is `trainguard.checkpoint.slot_layout`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from trainguard.checkpoint import slot_layout as layout
from trainguard.checkpoint.base import TierName, in_place, merge_payload
from trainguard.checkpoint.blobring import BlobRing
from trainguard.checkpoint.manifest import ShardMeta
from trainguard.checkpoint.tree import FlatState, dtype_from_name, load_skeleton


class MemoryTier(BlobRing):
    """One rank's memory tier (the arguments are `BlobRing`'s)."""

    name = TierName.MEMORY

    def write(self, step: int, flat: FlatState, skeleton: bytes) -> ShardMeta:
        """Copy ``flat``'s tensors and ``skeleton`` into a free slot and commit ``step``
        (raises as `BlobRing.commit`)."""
        return self.commit(
            step,
            tensor_bytes=flat.nbytes,
            skeleton_bytes=len(skeleton),
            fill=lambda slot: layout.copy_into(slot, flat, skeleton),
        )

    def snapshot(self, step: int, flat: FlatState) -> FlatState:
        """``flat`` with its tensors replaced by views of ``step``'s slot (caller pins it)."""
        entry = self._entry(step)
        slot = self._ring.slots[entry.slot]
        tensors = [
            layout.like_original(
                t, slot.view(r.offset, r.nbytes, dtype_from_name(r.dtype), r.shape)
            )
            for r, t in zip(flat.refs, flat.tensors, strict=True)
        ]
        return FlatState(
            skeleton=flat.skeleton, refs=flat.refs, tensors=tensors, nbytes=flat.nbytes
        )

    def read(self, step: int, target: MutableMapping[str, Any]) -> Any:
        """Verify ``step`` (checksum when recorded) and merge it into ``target``."""
        meta = self._checked_meta(step)
        index = self.pin(step)
        try:
            slot = self._verified_slot(index, meta)
            blob = slot.buffer(meta.tensor_bytes, meta.skeleton_bytes)
            try:
                skeleton = load_skeleton(blob, source=str(slot.path))
            finally:
                blob.release()
            return merge_payload(target, skeleton, in_place(lambda r: layout.tensor_view(slot, r)))
        finally:
            self.unpin(index)
