"""The small JSON records that say a checkpoint is complete and what its bytes should be.

A memory-tier shard is one blob in a preallocated slot file plus a `ShardMeta`; the meta is
written last, by atomic rename, so its presence is the commit. A durable checkpoint is a
torch.distributed.checkpoint directory plus a `DurableManifest` (every file's size and
checksum) and a completion marker written after the manifest. Readers parse these records
here and nowhere else, so a damaged record is always a `CheckpointCorrupt` naming its file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trainguard.checkpoint import checksum
from trainguard.errors import CheckpointCorrupt
from trainguard.permissions import open_private

FORMAT = 1
MARKER_NAME = "COMMITTED"
MANIFEST_NAME = "trainguard-manifest.json"
SKELETON_KEY = "__trainguard__/skeleton/rank_{rank}"

M = TypeVar("M", bound=BaseModel)


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    format: int = Field(default=FORMAT, description="Layout version of the record.")


class ShardMeta(_Record):
    """One rank's memory-tier shard of one step (``step_<N>.json`` beside its slot file)."""

    job: str = Field(description="Job name the shard belongs to.")
    rank: int = Field(ge=0, description="Global rank that saved it.")
    world_size: int = Field(ge=1, description="World size at save time.")
    step: int = Field(ge=0, description="Training step.")
    slot: str = Field(description="Name of the slot file holding the blob.")
    tensor_bytes: int = Field(ge=0, description="Bytes of tensor data at the start of the blob.")
    skeleton_bytes: int = Field(ge=0, description="Bytes of pickled skeleton after the tensors.")
    algorithm: str = Field(default=checksum.ALGORITHM, description="Checksum algorithm.")
    checksum: str | None = Field(
        default=None, description="Checksum of the whole blob; filled in by the background."
    )
    created: float = Field(description="Epoch seconds of the commit.")
    generation: str | None = Field(
        default=None,
        description="Run that saved it (one id per start of the job's workers, shared by all "
        "ranks); copies of one step from different runs are never mixed in a resume.",
    )

    @property
    def blob_bytes(self) -> int:
        """Tensor bytes plus skeleton bytes."""
        return self.tensor_bytes + self.skeleton_bytes


class FileEntry(BaseModel):
    """Size and checksum of one file of a durable checkpoint."""

    model_config = ConfigDict(frozen=True)

    size: int = Field(ge=0)
    checksum: str


class DurableManifest(_Record):
    """What a committed durable step holds (written before the marker)."""

    job: str
    step: int = Field(ge=0)
    world_size: int = Field(ge=1, description="Ranks that wrote the step.")
    algorithm: str = checksum.ALGORITHM
    files: dict[str, FileEntry] = Field(description="Relative file name -> size and checksum.")
    created: float
    generation: str | None = Field(default=None, description="Run that saved it (ShardMeta's).")


def parse(model: type[M], data: bytes | str, *, source: str) -> M:
    """Parse a record; any damage is `CheckpointCorrupt` naming ``source``."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise CheckpointCorrupt(f"{source}: {where}: {first['msg']}") from exc


def dumps(record: BaseModel) -> bytes:
    """The record as compact JSON bytes."""
    return json.dumps(record.model_dump(mode="json"), separators=(",", ":")).encode()


def write_atomic(path: Path, data: bytes, *, sync: bool = False) -> None:
    """Write ``data`` to a temporary name beside ``path`` and rename it over ``path``.

    The file is created ``0600`` (it is a checkpoint's content or its metadata).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with os.fdopen(open_private(tmp, flags), "wb") as handle:
        handle.write(data)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_meta(path: Path) -> ShardMeta:
    """Read a `ShardMeta` file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CheckpointCorrupt(f"{path}: shard metadata vanished") from exc
    return parse(ShardMeta, data, source=str(path))


def as_dict(record: BaseModel) -> dict[str, Any]:
    """JSON-ready dict of a record."""
    return record.model_dump(mode="json")
