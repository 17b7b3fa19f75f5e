"""Reading one rank's memory-tier blob that is a plain file: a peer replica fetched to this node.

A blob is what the memory tier writes into a slot: the tensor bytes, then the pickled skeleton;
its `ShardMeta` says where each part ends and what the checksum must be. Replicas are only
loaded with a checksum (the network and a second node are two more places bytes can rot).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import torch

from trainguard.checkpoint import checksum
from trainguard.checkpoint.base import in_place, merge_payload
from trainguard.checkpoint.manifest import ShardMeta
from trainguard.checkpoint.tree import TensorRef, dtype_from_name, load_skeleton
from trainguard.errors import CheckpointCorrupt, CheckpointNotFound


def read_blob_file(path: Path, meta: ShardMeta, target: MutableMapping[str, Any]) -> Any:
    """Verify the blob at ``path`` against ``meta`` and merge it into ``target``.

    Returns:
        The user content saved with the step.

    Raises:
        CheckpointNotFound: the file is gone.
        CheckpointCorrupt: no checksum recorded, size or checksum mismatch, bad skeleton.
    """
    try:
        data = bytearray(path.read_bytes())
    except FileNotFoundError as exc:
        raise CheckpointNotFound(f"{path}: replica of step {meta.step} is gone") from exc
    if len(data) < meta.blob_bytes:
        raise CheckpointCorrupt(
            f"{path}: {len(data)} bytes, step {meta.step} needs {meta.blob_bytes}"
        )
    if meta.checksum is None:
        raise CheckpointCorrupt(f"{path}: replica of step {meta.step} has no checksum")
    checksum.check_algorithm(meta.algorithm, source=str(path))
    view = memoryview(data)[: meta.blob_bytes]
    digest = checksum.of_buffer(view, meta.algorithm)
    if digest != meta.checksum:
        raise CheckpointCorrupt(f"{path}: checksum {digest} != {meta.checksum} of step {meta.step}")
    skeleton = load_skeleton(view[meta.tensor_bytes :], source=str(path))
    whole = torch.frombuffer(data, dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)

    def source(ref: TensorRef) -> torch.Tensor:
        part = whole[ref.offset : ref.offset + ref.nbytes]
        return part.view(dtype_from_name(ref.dtype)).view(ref.shape)

    return merge_payload(target, skeleton, in_place(source))
