"""The shard store: MTC shards kept in `BlobRing`, the ring our own memory tier writes.

Each (namespace, rank) is one `BlobRing` (what `MemoryTier` is, without tensors, so this
server never imports torch) under ``<root>/<namespace>/rank_<R>/``, exactly the layout
`CheckpointManager` uses for a (job, rank): preallocated slot files in tmpfs reused in a
ring, a step committed by renaming its meta into place, the newest ``steps_retained`` kept and
older ones evicted, a CRC-32C of every stored blob checked on every read. An MTC shard is an
opaque byte string to us, so it is stored as a blob with no tensors (all "skeleton" bytes,
its checksum recorded in the commit itself):
the client's ``Shard-Meta`` header (returned verbatim), length-prefixed, then the shard. One
commit holds both, so a read racing a re-upload of the same step never pairs one upload's
header with the other's bytes.

Memory accounting: the store counts the bytes of committed shards (with their header; what
retention keeps) plus uploads in flight, and refuses a shard that would take the node past
``memory_bytes`` after retention has evicted what it will (`StorageFull`, a 507 at the edge) —
the node answers an error instead of growing until the kernel's OOM killer picks a process.
tmpfs running out of pages is caught by the slot's ``posix_fallocate`` and answered the same
way. Slot files are reused, so the physical footprint is about
``(steps_retained + 2) / steps_retained`` of the counted bytes.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trainguard.checkpoint.blobring import BlobRing
from trainguard.checkpoint.mtc.namespaces import NamespaceConfig
from trainguard.errors import CheckpointCorrupt, CheckpointNotFound, ConflictError, StorageFull

HEADER_PREFIX = 4
"""Bytes of the big-endian length of the stored ``Shard-Meta`` header."""
SLOT_WAIT_S = 30.0
"""Seconds a put waits for a slot pinned by a concurrent read before failing."""


class ShardStore:
    """Shards of every namespace on this node.

    Args:
        root: directory in node-local shared memory (one per server).
        memory_bytes: committed shard bytes the node holds at most.
    """

    def __init__(self, root: Path, *, memory_bytes: int) -> None:
        self.root, self.memory_bytes = root, memory_bytes
        self._lock = threading.Lock()
        self._tiers: dict[tuple[str, int], BlobRing] = {}
        self._reserved = 0

    # --- tiers -----------------------------------------------------------------------------
    def _tier(self, namespace: str, config: NamespaceConfig, rank: int) -> BlobRing:
        with self._lock:
            tier = self._tiers.get((namespace, rank))
            if tier is not None and not tier.dir.is_dir():  # memory wiped (node rebooted)
                tier.close()
                tier = None
            if tier is None:
                tier = BlobRing(
                    self.root,
                    job=namespace,
                    rank=rank,
                    world_size=config.num_ranks,
                    keep=config.steps_retained,
                    wait_timeout=SLOT_WAIT_S,
                )
                self._tiers[(namespace, rank)] = tier
            return tier

    def adopt(self, namespace: str, config: NamespaceConfig) -> None:
        """Open every rank of a namespace already in shared memory (a restarted server), so
        its shards are served and counted against the memory budget."""
        for rank in self._ranks_on_disk(namespace):
            self._tier(namespace, config, rank)

    def _ranks_on_disk(self, namespace: str) -> list[int]:
        found = (p.name.removeprefix("rank_") for p in (self.root / namespace).glob("rank_*"))
        return sorted(int(r) for r in found if r.isdigit())

    # --- operations -----------------------------------------------------------------------
    def put(
        self,
        namespace: str,
        config: NamespaceConfig,
        *,
        rank: int,
        step: int,
        body: bytes,
        header: str,
    ) -> None:
        """Commit ``body`` as ``rank``'s shard of ``step`` (evicting beyond retention).

        Raises:
            StorageFull: the node's memory budget or its tmpfs has no room for it.
            ConflictError: retention would evict it at once (the rank keeps only newer steps).
        """
        tier = self._tier(namespace, config, rank)
        _check_kept(tier, step)
        blob = _pack(header, body)
        with self._reservation(tier, step, len(blob)):
            tier.write_blob(step, blob)

    def get(
        self, namespace: str, config: NamespaceConfig, rank: int, step: int
    ) -> tuple[bytes, str]:
        """``(body, Shard-Meta header)`` of a committed shard.

        Raises:
            CheckpointNotFound: this node does not hold it.
            CheckpointCorrupt: its bytes no longer match the checksum recorded at commit.
        """
        if rank not in self._ranks_on_disk(namespace):
            raise CheckpointNotFound(f"{namespace}: no shard of rank {rank} on this node")
        tier = self._tier(namespace, config, rank)
        if step not in tier.steps():
            raise CheckpointNotFound(f"{namespace}: no shard of rank {rank} step {step}")
        _, blob = tier.read_bytes(step)
        return _unpack(blob, source=f"{tier.dir} step {step}")

    def delete(self, namespace: str, config: NamespaceConfig, rank: int, step: int) -> bool:
        """Forget one shard; False when this node did not hold it."""
        if rank not in self._ranks_on_disk(namespace):
            return False
        tier = self._tier(namespace, config, rank)
        return tier.discard(step)

    def inventory(self, namespace: str, config: NamespaceConfig) -> dict[int, list[int]]:
        """Committed steps per rank held on this node."""
        ranks = self._ranks_on_disk(namespace)
        return {rank: self._tier(namespace, config, rank).steps() for rank in ranks}

    def drop(self, namespace: str) -> None:
        """Delete every shard of ``namespace`` on this node."""
        with self._lock:
            tiers = [k for k in self._tiers if k[0] == namespace]
            for key in tiers:
                self._tiers.pop(key).close()
        for rank in self._ranks_on_disk(namespace):
            shutil.rmtree(self.root / namespace / f"rank_{rank}", ignore_errors=True)

    def used_bytes(self) -> int:
        """Bytes of committed shards this node holds (the accounted memory)."""
        with self._lock:
            tiers = list(self._tiers.values())
        return sum(_tier_bytes(tier) for tier in tiers)

    def close(self) -> None:
        """Unmap every slot (the shards stay in shared memory)."""
        with self._lock:
            for tier in self._tiers.values():
                tier.close()
            self._tiers.clear()

    # --- accounting -----------------------------------------------------------------------
    @contextmanager
    def _reservation(self, tier: BlobRing, step: int, size: int) -> Iterator[None]:
        with self._lock:
            growth = _growth(tier, step, size)
            in_use = sum(_tier_bytes(t) for t in self._tiers.values()) + self._reserved
            if in_use + growth > self.memory_bytes:
                raise StorageFull(
                    f"node memory budget: {in_use} of {self.memory_bytes} bytes in use, "
                    f"rank {tier.rank} step {step} needs {growth} more (body {size} bytes)"
                )
            self._reserved += max(growth, 0)
        try:
            yield
        finally:
            with self._lock:
                self._reserved -= max(growth, 0)


def _tier_bytes(tier: BlobRing) -> int:
    return sum(tier.meta(step).blob_bytes for step in tier.steps())


def _growth(tier: BlobRing, step: int, size: int) -> int:
    """Committed bytes after ``step`` is stored and retention has run, minus those before."""
    before = {s: tier.meta(s).blob_bytes for s in tier.steps()}
    after = {**before, step: size}
    kept = sorted(after)[-tier.keep :]
    return sum(after[s] for s in kept) - sum(before.values())


def _check_kept(tier: BlobRing, step: int) -> None:
    """Refuse a step retention would evict as soon as it is committed: a 200 would say it is
    stored when it is not."""
    held = tier.steps()
    if step not in sorted([*held, step])[-tier.keep :]:
        raise ConflictError(
            f"step: {step} is older than the {tier.keep} step(s) rank {tier.rank} keeps "
            f"({', '.join(map(str, held))}); it would be evicted at once"
        )


def _pack(header: str, body: bytes) -> bytes:
    encoded = header.encode()
    return len(encoded).to_bytes(HEADER_PREFIX, "big") + encoded + body


def _unpack(blob: bytes, *, source: str) -> tuple[bytes, str]:
    size = int.from_bytes(blob[:HEADER_PREFIX], "big")
    if len(blob) < HEADER_PREFIX + size:
        raise CheckpointCorrupt(f"{source}: {len(blob)} bytes cannot hold a {size}-byte header")
    header = blob[HEADER_PREFIX : HEADER_PREFIX + size].decode(errors="replace")
    return blob[HEADER_PREFIX + size :], header
