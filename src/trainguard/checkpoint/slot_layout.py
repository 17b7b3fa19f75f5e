"""How one step of one rank lies in a memory-tier slot file, and how it is read back.

A slot holds one blob: every tensor of the flattened state at the offset its `TensorRef`
names, then the pickled skeleton (everything that is not a tensor). Writing is one ``copy_``
per tensor into a view of the mapping; reading hands out views of the mapping (wrapped as
DTensors again where the state held DTensors), so a restore copies each tensor once, into
the caller's state. Kept apart from `trainguard.checkpoint.blobring`, which owns the ring of
slots (which slot is free, committed or pinned, and the files that commit a step).
"""

from __future__ import annotations

import torch

from trainguard.checkpoint.slots import Slot
from trainguard.checkpoint.tree import (
    FlatState,
    TensorRef,
    dtype_from_name,
    is_dtensor,
    local_tensor,
)


def copy_into(slot: Slot, flat: FlatState, skeleton: bytes) -> None:
    """Copy every tensor of ``flat`` to its offset in ``slot``, then ``skeleton`` after them."""
    for ref, tensor in zip(flat.refs, flat.tensors, strict=True):
        if ref.nbytes:
            dest = slot.bytes[ref.offset : ref.offset + ref.nbytes]
            dest.view(dtype_from_name(ref.dtype)).view(ref.shape).copy_(local_tensor(tensor))
    if skeleton:
        slot.write(flat.nbytes, skeleton)


def tensor_view(slot: Slot, ref: TensorRef) -> torch.Tensor:
    """The tensor ``ref`` describes, as a view of the slot (no copy)."""
    return (
        slot.bytes[ref.offset : ref.offset + ref.nbytes]
        .view(dtype_from_name(ref.dtype))
        .view(ref.shape)
    )


def like_original(original: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
    """Wrap a slot view as a DTensor when the original was one (same mesh and placements)."""
    if not is_dtensor(original):
        return view
    from torch.distributed.tensor import DTensor  # noqa: PLC0415 - only for DTensor state

    return DTensor.from_local(
        view,
        device_mesh=original.device_mesh,  # type: ignore[attr-defined]
        placements=original.placements,  # type: ignore[attr-defined]
        run_check=False,
        shape=original.shape,
        stride=original.stride(),
    )
