"""`CheckpointManager`: the object training scripts hold.

It ties the tiers together: ``save`` copies the state into the memory tier on the training
thread (the only part that blocks) and leaves checksums, durable writes and agent reports to
the background thread; ``load_latest`` agrees on a step with the other ranks and loads it from
the best tier. See `trainguard.checkpoint` for the constructor's options and the bounded-queue
policy.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainguard import constants as c
from trainguard.agent import ipc
from trainguard.checkpoint.background import Background, TaskErrors
from trainguard.checkpoint.base import Restored, Tier, TierName, payload
from trainguard.checkpoint.durable import DurableTier
from trainguard.checkpoint.group import Topology, destroy, topology
from trainguard.checkpoint.memory import MemoryTier
from trainguard.checkpoint.peer import PeerTier
from trainguard.checkpoint.report import AgentReporter
from trainguard.checkpoint.restore import restore
from trainguard.checkpoint.tree import FlatState, flatten
from trainguard.clock import Clock, SystemClock
from trainguard.errors import UsageError

log = logging.getLogger("trainguard.checkpoint")

DEFAULT_JOB = "default"
STANDALONE_PARENT = Path("/dev/shm")
REPLICATION_TIMEOUT = 300.0


@dataclass
class SaveStats:
    """What saves cost so far (``manager.stats``).

    Attributes:
        saves: memory-tier saves.
        durable_saves: durable steps committed.
        blocked_s: total seconds ``save`` blocked the training loop.
        last_blocked_s: seconds the latest ``save`` blocked.
        slot_waits: saves that had to wait for a free memory slot (the bounded queue was full).
        slot_wait_s: seconds spent in those waits (included in ``blocked_s``).
    """

    saves: int = 0
    durable_saves: int = 0
    blocked_s: float = 0.0
    last_blocked_s: float = 0.0
    slot_waits: int = 0
    slot_wait_s: float = 0.0


class CheckpointManager:
    """Tiered checkpoints for one rank of a training job (see the package docstring).

    Constructing it is collective when torch.distributed is initialized (it creates a gloo
    group), and so are `load_latest` and every durable save.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        durable_uri: str | None = None,
        job: str | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        memory_every: int = 10,
        durable_every: int = 20,
        memory_keep: int = 2,
        durable_keep: int = 2,
        shm_dir: str | os.PathLike[str] | None = None,
        socket_path: str | None = None,
        slot_wait_timeout: float = 600.0,
        clock: Clock | None = None,
    ) -> None:
        _check_options(memory_every, durable_every, memory_keep, durable_keep)
        if directory is not None and durable_uri is not None:
            raise UsageError("give the durable location once: directory or durable_uri")
        uri = durable_uri if durable_uri is not None else directory
        self.memory_every, self.durable_every = memory_every, durable_every
        self.job = job or os.environ.get(c.ENV_JOB_NAME) or DEFAULT_JOB
        self.clock: Clock = clock or SystemClock()
        self.topo: Topology = topology(rank=rank, world_size=world_size)
        self._private = _private_root(shm_dir)
        root = Path(shm_dir or os.environ.get(c.ENV_SHM_DIR) or self._private or "")
        self.memory = MemoryTier(
            root,
            job=self.job,
            rank=self.topo.rank,
            world_size=self.topo.world_size,
            keep=memory_keep,
            wait_timeout=slot_wait_timeout,
            clock=self.clock,
        )
        self.durable = None if uri is None else self._durable(os.fspath(uri), durable_keep)
        self.reporter = AgentReporter(socket_path)
        self.memory_keep = memory_keep
        # Replication moves whole shards: its own connection, a long timeout, background only.
        self._replicator = AgentReporter(socket_path, timeout=REPLICATION_TIMEOUT)
        self.peer = (
            PeerTier(
                self._replicator, job=self.job, rank=self.rank, world_size=self.topo.world_size
            )
            if self._replicator.enabled
            else None
        )
        self.stats = SaveStats()
        self.restored: Restored | None = None
        self._background = Background()
        self._closed = False

    def _durable(self, uri: str, keep: int) -> DurableTier:
        return DurableTier(
            uri,
            job=self.job,
            rank=self.topo.rank,
            world_size=self.topo.world_size,
            keep=keep,
            group=self.topo.group,
            clock=self.clock,
        )

    @property
    def rank(self) -> int:
        """This process's rank in the checkpoint group."""
        return self.topo.rank

    @property
    def errors(self) -> TaskErrors:
        """Failures of background work (checksums, durable writes)."""
        return self._background.errors

    @property
    def busy(self) -> bool:
        """Whether background work (checksums, durable writes) is still running."""
        return self._background.pending > 0

    # --- saving -------------------------------------------------------------------------
    def is_durable_step(self, step: int) -> bool:
        """Whether ``save(step)`` also writes the durable tier."""
        return (
            self.durable is not None and self.durable_every > 0 and step % self.durable_every == 0
        )

    def is_save_step(self, step: int) -> bool:
        """Whether ``save(step)`` takes a checkpoint at all."""
        memory = self.memory_every > 0 and step % self.memory_every == 0
        return memory or self.is_durable_step(step)

    def save(
        self,
        step: int,
        state_dict: MutableMapping[str, Any],
        *,
        user_content: Any = None,
        force: bool = False,
    ) -> bool:
        """Checkpoint ``state_dict`` at ``step`` when the frequencies say so (or ``force``).

        Returns once the memory tier holds the step; the checksum and, on durable steps, the
        durable copy follow in the background. A durable step is collective.

        Args:
            step: training step (the checkpoint's name; must be >= 0).
            state_dict: nested dicts/lists of tensors and picklable values.
            user_content: anything picklable to restore with it (data-loader position...).
            force: save to the memory tier even when ``step`` is not a multiple of
                ``memory_every`` (durable only on durable steps).

        Returns:
            Whether a checkpoint was taken.

        Raises:
            StorageFull: shared memory has no room for this rank's shard.
            CheckpointError: no memory slot became free in ``slot_wait_timeout``.
        """
        self._check_open()
        if step < 0:
            raise UsageError(f"checkpoint step must be >= 0, got {step}")
        if not (force or self.is_save_step(step)):
            return False
        self.reporter.save_begin(step)
        started, waited = self.clock.monotonic(), self.memory.waits.seconds
        try:
            flat = flatten(payload(state_dict, user_content))
            skeleton = flat.skeleton_bytes()
            self.memory.write(step, flat, skeleton)
            self._after_memory_commit(step, flat, skeleton)
        finally:
            self.reporter.save_end(step)
        self._account(self.clock.monotonic() - started, self.memory.waits.seconds - waited)
        return True

    def _after_memory_commit(self, step: int, flat: FlatState, skeleton: bytes) -> None:
        index = self.memory.pin(step)
        self._background.submit(f"checksum of step {step}", lambda: self._checksum(step, index))
        if self.is_durable_step(step):
            durable_index = self.memory.pin(step)
            snapshot = self.memory.snapshot(step, flat)
            self._background.submit(
                f"durable write of step {step}",
                lambda: self._write_durable(step, durable_index, snapshot, skeleton),
            )
        size = flat.nbytes + len(skeleton)
        self._background.submit("slot preparation", lambda: self.memory.prepare(size))

    def _checksum(self, step: int, index: int) -> None:
        try:
            if self.memory.add_checksum(step, index) is not None:
                self._replicate(step)
        finally:
            self.memory.unpin(index)
        self.reporter.info_update(
            step=step,
            tier=TierName.MEMORY,
            path=str(self.memory.meta_path(step)),
            held=self.memory.steps(),
        )

    def _replicate(self, step: int) -> None:
        """Have the agent copy the (pinned, checksummed) step to the peer node."""
        if self.peer is None:
            return
        self._replicator.request(
            ipc.CKPT_REPLICATE,
            job=self.job,
            rank=self.rank,
            step=step,
            meta_path=str(self.memory.meta_path(step)),
            keep=self.memory_keep,
        )

    def _write_durable(self, step: int, index: int, snapshot: FlatState, skeleton: bytes) -> None:
        assert self.durable is not None
        try:
            committed = self.durable.write(step, snapshot, skeleton)
        finally:
            del snapshot
            self.memory.unpin(index)
        if committed:
            self.stats.durable_saves += 1
            self.reporter.info_update(
                step=step,
                tier=TierName.DURABLE,
                path=self.durable.step_path(step),
                held=self.durable.steps(),
            )

    def _account(self, blocked: float, waited: float) -> None:
        self.stats.saves += 1
        self.stats.last_blocked_s = blocked
        self.stats.blocked_s += blocked
        if waited > 0:
            self.stats.slot_waits += 1
            self.stats.slot_wait_s += waited

    # --- restoring ----------------------------------------------------------------------
    def tiers(self) -> list[Tier]:
        """Tiers in restore preference order."""
        found: list[Tier] = [self.memory]
        if self.peer is not None:
            found.append(self.peer)
        if self.durable is not None:
            found.append(self.durable)
        return found

    def load_latest(self, state_dict: MutableMapping[str, Any]) -> int | None:
        """Load the newest step complete for all ranks into ``state_dict`` (in place).

        Collective when torch.distributed is initialized. The user content saved with the step
        is in ``self.restored.user_content`` afterwards.

        Returns:
            The step restored, or ``None`` when there is nothing to resume from.
        """
        self._check_open()
        self._background.drain()
        limit = self._resume_limit()
        self.reporter.save_begin(-1)
        try:
            self.restored = restore(self.tiers(), state_dict, topo=self.topo, limit=limit)
        finally:
            self.reporter.save_end(-1)
        step, tier = self.restored.step, self.restored.tier
        if step is not None:
            self.memory.discard_above(step)
            log.info("checkpoint: resumed from step %d (%s tier)", step, tier)
        self.reporter.resume(step=step, tier=str(tier))
        return step

    def _resume_limit(self) -> int | None:
        raw = os.environ.get(c.ENV_RESUME_STEP, "").strip()
        if not raw:
            return self.reporter.agreed_step()
        try:
            return int(raw)
        except ValueError as exc:
            raise UsageError(f"{c.ENV_RESUME_STEP}={raw!r} is not an integer step") from exc

    # --- lifecycle ----------------------------------------------------------------------
    def wait(self) -> None:
        """Block until checksums and durable writes of every save so far are done."""
        self._background.drain()

    def close(self) -> None:
        """Drain background work, unmap memory and, in standalone mode, delete it."""
        if self._closed:
            return
        self._closed = True
        self._background.close()
        self.memory.close(remove=self._private is not None)
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
        self.reporter.close()
        self._replicator.close()
        destroy(self.topo)

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("checkpoint manager is closed")

    def __enter__(self) -> CheckpointManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_options(
    memory_every: int, durable_every: int, memory_keep: int, durable_keep: int
) -> None:
    for name, value, low in (
        ("memory_every", memory_every, 0),
        ("durable_every", durable_every, 0),
        ("memory_keep", memory_keep, 1),
        ("durable_keep", durable_keep, 1),
    ):
        if not isinstance(value, int) or value < low:
            raise UsageError(
                f"CheckpointManager: {name} must be an integer >= {low}, got {value!r}"
            )


def _private_root(shm_dir: str | os.PathLike[str] | None) -> Path | None:
    """A private memory root for standalone use (no agent, no explicit dir); `close` removes it."""
    if shm_dir is not None or os.environ.get(c.ENV_SHM_DIR):
        return None
    parent = STANDALONE_PARENT if STANDALONE_PARENT.is_dir() else None
    return Path(tempfile.mkdtemp(prefix="trainguard-ckpt-", dir=parent))
