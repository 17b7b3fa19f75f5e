"""Where an agent keeps the memory-tier replicas it receives from its peer, and what it fetched.

Layout under the agent's node-local memory directory::

    .replicas/<job>/rank_<R>/step_<N>.bin   blob of rank R's step N, sent by the peer agent
    .replicas/<job>/rank_<R>/step_<N>.json  its ShardMeta (checksum included), written last
    .fetched/<job>/rank_<R>/...             the same, pulled back from a peer for a restore

The meta is renamed into place after the blob, so a replica is complete exactly when its meta
exists (the same commit rule as the memory tier). Retention keeps the newest ``keep`` steps per
rank. The whole directory belongs to the job's memory and is deleted with it.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainguard.checkpoint import manifest
from trainguard.checkpoint.manifest import ShardMeta
from trainguard.errors import CheckpointCorrupt, CheckpointNotFound, UsageError
from trainguard.permissions import private_dir

REPLICAS = ".replicas"
FETCHED = ".fetched"


def _safe(name: str, what: str) -> str:
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"replica {what} {name!r} is not a plain name")
    return name


class ReplicaStore:
    """Replicas under ``root`` (``<shm>/.replicas`` or ``<shm>/.fetched``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def dir(self, job: str, rank: int) -> Path:
        """Directory of one rank's replicas."""
        return self.root / _safe(job, "job") / f"rank_{int(rank)}"

    def meta_path(self, job: str, rank: int, step: int) -> Path:
        """Where step ``step``'s meta lives."""
        return self.dir(job, rank) / f"step_{int(step)}.json"

    def put(self, meta: ShardMeta, blob: bytes, *, keep: int) -> Path:
        """Store a replica (blob first, meta last) and apply retention; return the meta path."""
        if len(blob) != meta.blob_bytes:
            raise UsageError(f"replica of step {meta.step}: {len(blob)} bytes != {meta.blob_bytes}")
        directory = self.dir(meta.job, meta.rank)
        private_dir(directory)  # .replicas, the job and the rank: 0700, blob and meta 0600
        name = f"step_{meta.step}.bin"
        manifest.write_atomic(directory / name, blob)
        stored = meta.model_copy(update={"slot": name})
        path = self.meta_path(meta.job, meta.rank, meta.step)
        manifest.write_atomic(path, manifest.dumps(stored))
        self.retain(meta.job, meta.rank, keep=keep)
        return path

    def steps(self, job: str, rank: int) -> list[int]:
        """Complete replicas of a rank, oldest first."""
        directory = self.dir(job, rank)
        if not directory.is_dir():
            return []
        found = (p.stem.removeprefix("step_") for p in directory.glob("step_*.json"))
        return sorted(int(s) for s in found if s.isdigit())

    def world_sizes(self, job: str, rank: int) -> dict[int, int]:
        """World size each complete replica of a rank was saved at, by step."""
        sizes: dict[int, int] = {}
        for step in self.steps(job, rank):
            try:
                sizes[step] = manifest.read_meta(self.meta_path(job, rank, step)).world_size
            except CheckpointCorrupt:
                continue
        return sizes

    def get(self, job: str, rank: int, step: int) -> tuple[ShardMeta, bytes]:
        """The meta and blob of a replica.

        Raises:
            CheckpointNotFound: no complete replica of that step.
        """
        path = self.meta_path(job, rank, step)
        if not path.exists():
            raise CheckpointNotFound(f"no replica of rank {rank} step {step} at {path.parent}")
        meta = manifest.read_meta(path)
        try:
            blob = (path.parent / meta.slot).read_bytes()
        except FileNotFoundError as exc:
            raise CheckpointNotFound(f"{path.parent / meta.slot}: replica blob is gone") from exc
        return meta, blob

    def retain(self, job: str, rank: int, *, keep: int) -> None:
        """Delete all but the newest ``keep`` replicas of a rank."""
        for step in self.steps(job, rank)[: -keep or None]:
            self.remove(job, rank, step)

    def remove(self, job: str, rank: int, step: int) -> None:
        """Delete one replica (meta first, so it is never half there)."""
        path = self.meta_path(job, rank, step)
        path.unlink(missing_ok=True)
        (path.parent / f"step_{int(step)}.bin").unlink(missing_ok=True)
        for stale in path.parent.glob(f".step_{int(step)}.*.tmp"):
            os.unlink(stale)
