"""One rank's ring of committed blobs in node-local shared memory: the memory tier, no torch.

Layout under the shared-memory root (``TRAINGUARD_SHM_DIR``, set by the agent)::

    <root>/<job>/rank_<R>/slot_<i>.bin     preallocated blob files, reused in a ring
    <root>/<job>/rank_<R>/step_<N>.json    ShardMeta; its presence commits step N
    <root>/<job>/rank_<R>/.lock            flock: one writer per rank directory

A commit fills a free slot, then renames the meta into place. The ring has ``keep + 1`` slots
(plus one per background reader, see ``extra_slots``), so the newest committed steps are never
overwritten by the write in progress; a crash mid-copy leaves a slot no meta points to, which
is invisible. Background readers (checksum, durable copy) *pin* a slot; when every slot is
committed or pinned, the next commit waits for one (the bounded queue) and the wait is counted.

What a blob holds is the caller's business: `trainguard.checkpoint.memory.MemoryTier` (the
tier `CheckpointManager` writes) fills it with tensors and a pickled skeleton; the MTC server
(`trainguard.checkpoint.mtc.shards`) stores the library's opaque shards with `write_blob`. This
module imports no torch, so a server that keeps only opaque shards never loads it (one process
per node: torch alone costs it hundreds of MB and seconds of start-up).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from trainguard.checkpoint import checksum, manifest
from trainguard.checkpoint.manifest import ShardMeta
from trainguard.checkpoint.slots import Slot, slot_index, slot_name
from trainguard.clock import Clock, SystemClock
from trainguard.errors import CheckpointCorrupt, CheckpointError, CheckpointNotFound
from trainguard.permissions import private_dir

log = logging.getLogger("trainguard.checkpoint")


@dataclass
class SlotWaits:
    """How often, and how long, saves waited for a free slot (the bounded queue was full)."""

    count: int = 0
    seconds: float = 0.0


@dataclass
class _Committed:
    step: int
    slot: int
    meta: ShardMeta


@dataclass
class _Ring:
    slots: dict[int, Slot] = field(default_factory=dict)
    pins: dict[int, int] = field(default_factory=dict)
    committed: dict[int, _Committed] = field(default_factory=dict)


class BlobRing:
    """One rank's ring of committed blobs.

    Args:
        root: the node-local shared-memory directory.
        job: job name (a directory level, so jobs never collide).
        rank: global rank.
        world_size: ranks in the job; steps saved with another world size are not offered.
        keep: committed steps to retain (K); older ones are evicted after each commit.
        extra_slots: slots beyond ``keep + 1`` so background readers rarely block a commit.
        wait_timeout: seconds a commit waits for a free slot before giving up.
        clock: time source (commit times, wait accounting).
        generation: the run id recorded in every shard this ring writes (see `ShardMeta`).
    """

    def __init__(
        self,
        root: Path,
        *,
        job: str,
        rank: int,
        world_size: int,
        keep: int = 2,
        extra_slots: int = 1,
        wait_timeout: float = 600.0,
        clock: Clock | None = None,
        generation: str | None = None,
    ) -> None:
        self.root, self.job, self.rank, self.world_size = root, job, rank, world_size
        self.generation = generation
        self.keep, self.wait_timeout = keep, wait_timeout
        self.clock: Clock = clock or SystemClock()
        self.dir = root / job / f"rank_{rank}"
        private_dir(self.dir)  # the job's and the rank's directory: 0700, slots 0600
        self._lock_fd = _lock_dir(self.dir)
        self._ring = _Ring()
        self._cond = threading.Condition()
        self.slot_count = keep + 1 + extra_slots
        self.waits = SlotWaits()
        self._scan()

    # --- discovery ----------------------------------------------------------------------
    def _scan(self) -> None:
        for path in sorted(self.dir.glob("step_*.json")):
            try:
                meta = manifest.read_meta(path)
            except CheckpointCorrupt as exc:
                log.warning("memory tier: ignoring damaged shard metadata: %s", exc)
                continue
            index = slot_index(meta.slot)
            if index is None or meta.rank != self.rank or meta.job != self.job:
                log.warning("memory tier: ignoring %s (slot/rank/job mismatch)", path)
                continue
            self._ring.committed[meta.step] = _Committed(meta.step, index, meta)
        for path in self.dir.glob(".step_*.tmp"):
            path.unlink(missing_ok=True)

    def steps(self) -> list[int]:
        """Committed steps saved with the current world size, oldest first."""
        with self._cond:
            entries = self._ring.committed.values()
            return sorted(e.step for e in entries if e.meta.world_size == self.world_size)

    def meta(self, step: int) -> ShardMeta:
        """The committed meta of ``step``."""
        with self._cond:
            entry = self._ring.committed.get(step)
        if entry is None:
            raise CheckpointNotFound(f"memory tier {self.dir}: no committed step {step}")
        return entry.meta

    def meta_path(self, step: int) -> Path:
        """Where ``step``'s meta lives (what the agent is told)."""
        return self.dir / f"step_{step}.json"

    # --- writing ------------------------------------------------------------------------
    def write_blob(self, step: int, blob: bytes) -> ShardMeta:
        """Commit ``blob`` as ``step``, its checksum recorded in the same meta (opaque shards).

        Raises:
            StorageFull: shared memory has no room for the slot.
            CheckpointError: no slot became free within ``wait_timeout``.
        """
        return self.commit(
            step,
            tensor_bytes=0,
            skeleton_bytes=len(blob),
            fill=lambda slot: slot.write(0, blob),
            digest=checksum.of_buffer(blob),
        )

    def commit(
        self,
        step: int,
        *,
        tensor_bytes: int,
        skeleton_bytes: int,
        fill: Callable[[Slot], None],
        digest: str | None = None,
    ) -> ShardMeta:
        """Take a free slot, let ``fill`` write the blob into it, then commit ``step``.

        Args:
            step: the step to commit (a committed step of the same number is replaced).
            tensor_bytes: bytes of tensor data at the start of the blob.
            skeleton_bytes: bytes after them.
            fill: writes the blob into the slot it is given.
            digest: the blob's checksum when already known (else `add_checksum` later).

        Raises:
            StorageFull: shared memory has no room for the slot.
            CheckpointError: no slot became free within ``wait_timeout``.
        """
        index = self._acquire()
        try:
            fill(self._slot(index, tensor_bytes + skeleton_bytes))
            meta = ShardMeta(
                job=self.job,
                rank=self.rank,
                world_size=self.world_size,
                step=step,
                slot=slot_name(index),
                tensor_bytes=tensor_bytes,
                skeleton_bytes=skeleton_bytes,
                checksum=digest,
                created=self.clock.wall(),
                generation=self.generation,
            )
            with self._cond:
                self._drop_locked(step)
                manifest.write_atomic(self.meta_path(step), manifest.dumps(meta))
                self._ring.committed[step] = _Committed(step, index, meta)
                self._evict_locked()
        finally:
            self.unpin(index)
        return meta

    def _acquire(self) -> int:
        started = self.clock.monotonic()
        deadline = started + self.wait_timeout
        with self._cond:
            waited = False
            while (index := self._free_locked()) is None:
                waited = True
                remaining = deadline - self.clock.monotonic()
                if remaining <= 0:
                    raise CheckpointError(
                        f"memory tier {self.dir}: no free slot after {self.wait_timeout}s "
                        "(background checkpoint work is stuck)"
                    )
                self._cond.wait(timeout=min(remaining, 1.0))
            if waited:
                self.waits.count += 1
                self.waits.seconds += self.clock.monotonic() - started
            self._ring.pins[index] = self._ring.pins.get(index, 0) + 1
            return index

    def _free_locked(self) -> int | None:
        used = {e.slot for e in self._ring.committed.values()}
        busy = {i for i, n in self._ring.pins.items() if n > 0}
        candidates = [i for i in range(self.slot_count) if i not in used | busy]
        if not candidates:
            return None
        mapped = [i for i in candidates if i in self._ring.slots]
        return (mapped or candidates)[0]

    def _slot(self, index: int, size: int) -> Slot:
        slot = self._ring.slots.get(index)
        if slot is None:
            slot = Slot(self.dir / slot_name(index), size)
            self._ring.slots[index] = slot
        else:
            slot.ensure(size)
        return slot

    def prepare(self, size: int) -> None:
        """Map (and pre-fault) the slot the next save will use, off the training thread."""
        with self._cond:
            index = self._free_locked()
            if index is None:
                return
            self._ring.pins[index] = self._ring.pins.get(index, 0) + 1
        try:
            self._slot(index, size)
        finally:
            self.unpin(index)

    def _drop_locked(self, step: int) -> None:
        entry = self._ring.committed.pop(step, None)
        if entry is not None:
            self.meta_path(step).unlink(missing_ok=True)

    def discard(self, step: int) -> bool:
        """Forget committed ``step`` (its slot is free again); False when it was not there."""
        with self._cond:
            found = step in self._ring.committed
            self._drop_locked(step)
            self._cond.notify_all()
            return found

    def discard_above(self, step: int) -> None:
        """Forget committed steps newer than ``step`` (an abandoned timeline after a resume)."""
        with self._cond:
            for newer in [s for s in self._ring.committed if s > step]:
                self._drop_locked(newer)
            self._cond.notify_all()

    def _evict_locked(self) -> None:
        current = sorted(s for s, e in self._ring.committed.items())
        for step in current[: max(0, len(current) - self.keep)]:
            self._drop_locked(step)

    # --- pins for background readers -------------------------------------------------------
    def pin(self, step: int) -> int:
        """Keep ``step``'s slot from being reused until `unpin`; returns the slot index."""
        with self._cond:
            entry = self._ring.committed.get(step)
            if entry is None:
                raise CheckpointNotFound(f"memory tier {self.dir}: step {step} is gone")
            self._ring.pins[entry.slot] = self._ring.pins.get(entry.slot, 0) + 1
            return entry.slot

    def unpin(self, index: int) -> None:
        """Release one pin of a slot."""
        with self._cond:
            self._ring.pins[index] = max(0, self._ring.pins.get(index, 0) - 1)
            self._cond.notify_all()

    def _entry(self, step: int) -> _Committed:
        with self._cond:
            entry = self._ring.committed.get(step)
        if entry is None:
            raise CheckpointNotFound(f"memory tier {self.dir}: step {step} is not committed")
        return entry

    def add_checksum(self, step: int, slot_index: int) -> str | None:
        """Checksum a pinned step's blob and record it in its meta.

        Returns:
            The checksum, or None when the step was evicted (or re-saved) in the meantime.
        """
        with self._cond:
            entry = self._ring.committed.get(step)
        if entry is None or entry.slot != slot_index:
            return None
        slot = self._slot(slot_index, entry.meta.blob_bytes)
        digest = slot.checksum(entry.meta.blob_bytes)
        with self._cond:
            current = self._ring.committed.get(step)
            if current is not None and current.slot == slot_index:
                meta = current.meta.model_copy(update={"checksum": digest})
                manifest.write_atomic(self.meta_path(step), manifest.dumps(meta))
                current.meta = meta
        return digest

    # --- reading ------------------------------------------------------------------------
    def read_bytes(self, step: int) -> tuple[ShardMeta, bytes]:
        """``step``'s whole blob as bytes, its checksum verified when recorded (opaque shards)."""
        meta = self._checked_meta(step)
        index = self.pin(step)
        try:
            view = self._verified_slot(index, meta).buffer(0, meta.blob_bytes)
            try:
                return meta, bytes(view)
            finally:
                view.release()
        finally:
            self.unpin(index)

    def _checked_meta(self, step: int) -> ShardMeta:
        """The meta of ``step`` as on disk now, its slot file known to be long enough."""
        meta = self._reload_meta(step)
        path = self.dir / meta.slot
        try:
            size = path.stat().st_size
        except FileNotFoundError as exc:
            raise CheckpointNotFound(f"{path}: memory copy of step {step} is gone") from exc
        if size < meta.blob_bytes:
            raise CheckpointCorrupt(f"{path}: {size} bytes, step {step} needs {meta.blob_bytes}")
        return meta

    def _verified_slot(self, index: int, meta: ShardMeta) -> Slot:
        """The pinned slot of ``meta``, its checksum checked when one is recorded."""
        slot = self._slot(index, meta.blob_bytes)
        if meta.checksum is not None:
            checksum.check_algorithm(meta.algorithm, source=str(self.meta_path(meta.step)))
            digest = slot.checksum(meta.blob_bytes, meta.algorithm)
            if digest != meta.checksum:
                raise CheckpointCorrupt(
                    f"{slot.path}: checksum {digest} != {meta.checksum} "
                    f"recorded for step {meta.step}"
                )
        return slot

    def _reload_meta(self, step: int) -> ShardMeta:
        """Re-read the meta from disk: a file deleted or damaged since the scan must count."""
        path = self.meta_path(step)
        if not path.exists():
            with self._cond:
                self._ring.committed.pop(step, None)
            raise CheckpointNotFound(f"{path}: memory copy of step {step} is gone")
        meta = manifest.read_meta(path)
        with self._cond:
            entry = self._ring.committed.get(step)
            if entry is not None:
                entry.meta = meta
        return meta

    # --- lifecycle ----------------------------------------------------------------------
    def close(self, *, remove: bool = False) -> None:
        """Unmap every slot; with ``remove``, delete this rank's files too."""
        with self._cond:
            for slot in self._ring.slots.values():
                slot.close()
            self._ring.slots.clear()
        if remove:
            for path in self.dir.iterdir():
                path.unlink(missing_ok=True)
            self.dir.rmdir()
        os.close(self._lock_fd)


def _lock_dir(directory: Path) -> int:
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise CheckpointError(
            f"{directory} is in use by another live process (one writer per rank)"
        ) from exc
    return fd
