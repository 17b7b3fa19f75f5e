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
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import torch

from trainguard import constants as c
from trainguard import ipc
from trainguard.checkpoint.background import BACKGROUND_NICE, Background, TaskErrors
from trainguard.checkpoint.base import Restored, Tier, TierName, payload
from trainguard.checkpoint.durable import DurableTier
from trainguard.checkpoint.durable_files import file_mode_setting
from trainguard.checkpoint.group import Topology, destroy, shared_token, topology
from trainguard.checkpoint.memory import MemoryTier
from trainguard.checkpoint.overlap import DeviceOrder, InFlight, SnapshotThread
from trainguard.checkpoint.peer import PeerTier
from trainguard.checkpoint.report import AgentReporter
from trainguard.checkpoint.restore import restore
from trainguard.checkpoint.settings import DEFAULT_JOB, SaveStats, check_options, private_root
from trainguard.checkpoint.tree import FlatState, flatten
from trainguard.clock import Clock, SystemClock
from trainguard.errors import UsageError

log = logging.getLogger("trainguard.checkpoint")

REPLICATION_TIMEOUT = 300.0


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
        durable_file_mode: int | str | None = None,
        background_nice: int = BACKGROUND_NICE,
        clock: Clock | None = None,
    ) -> None:
        check_options(memory_every, durable_every, memory_keep, durable_keep)
        if directory is not None and durable_uri is not None:
            raise UsageError("give the durable location once: directory or durable_uri")
        uri = durable_uri if durable_uri is not None else directory
        mode = file_mode_setting(durable_file_mode)
        self.memory_every, self.durable_every = memory_every, durable_every
        self.job = job or os.environ.get(c.ENV_JOB_NAME) or DEFAULT_JOB
        self.clock: Clock = clock or SystemClock()
        self.topo: Topology = topology(rank=rank, world_size=world_size)
        self.generation = shared_token(self.topo)  # this run's id, the same on every rank
        self._private = private_root(shm_dir)
        root = Path(shm_dir or os.environ.get(c.ENV_SHM_DIR) or self._private or "")
        self.memory = MemoryTier(
            root,
            job=self.job,
            rank=self.topo.rank,
            world_size=self.topo.world_size,
            keep=memory_keep,
            wait_timeout=slot_wait_timeout,
            clock=self.clock,
            generation=self.generation,
        )
        self.durable = None if uri is None else self._durable(os.fspath(uri), durable_keep, mode)
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
        self._background = Background(nice=background_nice)
        self._snapshots = SnapshotThread()
        self._in_flight: InFlight | None = None
        self._closed = False

    def _durable(self, uri: str, keep: int, file_mode: int) -> DurableTier:
        tier = DurableTier(
            uri,
            job=self.job,
            rank=self.topo.rank,
            world_size=self.topo.world_size,
            keep=keep,
            group=self.topo.group,
            clock=self.clock,
            file_mode=file_mode,
            generation=self.generation,
        )
        tier.sweep()  # temporaries of saves a killed incarnation left behind
        return tier

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
        return self._snapshots.busy or self._background.pending > 0

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

    def report_step(
        self, step: int, *, total: int | None = None, loss: float | None = None
    ) -> None:
        """Tell the agent training step ``step`` of ``total`` finished with ``loss``.

        Call it once per step: ``trainguard run`` shows it as step/total, ETA and loss, and
        the controller times "training resumed" by the first step after a restart. Cheap:
        sent at most every few hundred milliseconds; a no-op outside an agent.
        """
        self.reporter.train_step(step, total=total, loss=loss)

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
        taken = self.save_async(step, state_dict, user_content=user_content, force=force)
        self.fence()
        return taken

    def save_async(
        self,
        step: int,
        state_dict: MutableMapping[str, Any],
        *,
        user_content: Any = None,
        force: bool = False,
    ) -> bool:
        """Like `save`, but returns while the copy into the memory tier still runs.

        The tensors of ``state_dict`` must not change until `fence` returns: call it before
        the next ``optimizer.step()``, or once `fence_before_step` (see
        `trainguard.checkpoint.overlap`). Errors of the copy are raised by `fence`.
        """
        self._check_open()
        if step < 0:
            raise UsageError(f"checkpoint step must be >= 0, got {step}")
        if not (force or self.is_save_step(step)):
            return False
        self.fence()
        started = self.clock.monotonic()
        self.reporter.save_begin(step)
        flat = flatten(payload(state_dict, user_content))
        skeleton = flat.skeleton_bytes()
        order = DeviceOrder(flat.tensors)
        waits = self.memory.waits.seconds
        self._snapshots.start(lambda: self._copy(step, flat, skeleton, order))
        self._in_flight = InFlight(step, self.clock.monotonic() - started, waits)
        return True

    def fence(self) -> None:
        """Wait until the snapshot in flight is in the memory tier (no-op without one).

        Raises:
            StorageFull, CheckpointError: what the copy raised (see `save`).
        """
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return
        started = self.clock.monotonic()
        try:
            self._snapshots.wait()
        finally:
            blocked = in_flight.blocked_s + self.clock.monotonic() - started
            self._account(blocked, self.memory.waits.seconds - in_flight.waits_before_s)

    def fence_before_step(self, optimizer: torch.optim.Optimizer) -> Any:
        """Make ``optimizer.step()`` wait for the snapshot in flight; returns the hook handle
        (``handle.remove()`` undoes it)."""
        return optimizer.register_step_pre_hook(lambda *_: self.fence())

    def _copy(self, step: int, flat: FlatState, skeleton: bytes, order: DeviceOrder) -> None:
        """The snapshot thread's part: the copy, then the background work it leaves."""
        try:
            with order.copying():
                self.memory.write(step, flat, skeleton)
            self._after_memory_commit(step, flat, skeleton)
        finally:
            self.reporter.save_end(step)

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
        except Exception as exc:  # reported, then recorded and logged by the background thread
            self._report_failure(step, str(exc))
            raise
        finally:
            del snapshot
            self.memory.unpin(index)
        if not committed and self.rank == 0:
            self._report_failure(step, "not committed: a rank failed after writing its files")
        if committed:
            self.stats.durable_saves += 1
            self.reporter.info_update(
                step=step,
                tier=TierName.DURABLE,
                path=self.durable.step_path(step),
                held=self.durable.steps(),
            )

    def _report_failure(self, step: int, error: str) -> None:
        self.reporter.save_failed(step=step, rank=self.rank, tier=TierName.DURABLE, error=error)

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

        Collective when torch.distributed is initialized. ``self.restored`` says afterwards
        what was loaded: user content, world sizes, and why a tier was passed over.

        Returns:
            The step restored, or ``None`` when there is nothing to resume from.
        """
        self._check_open()
        self.fence()
        self._background.drain()
        limit = self.reporter.resume_limit()
        self.reporter.save_begin(ipc.RESTORE_STEP)
        began = self.clock.monotonic()
        try:
            memory_dir = self.memory.root / self.job
            restored = restore(
                self.tiers(), state_dict, topo=self.topo, limit=limit, memory_dir=memory_dir
            )
        finally:
            self.reporter.save_end(ipc.RESTORE_STEP)
        self.restored = restored
        if restored.step is not None:
            self.memory.discard_above(restored.step)
            log.info("checkpoint: resumed from step %d (%s tier)", restored.step, restored.tier)
        if restored.reason:
            log.warning("checkpoint: resume passed over: %s", restored.reason)
        self.reporter.resumed(restored, seconds=self.clock.monotonic() - began)
        return restored.step

    # --- lifecycle ----------------------------------------------------------------------
    def wait(self) -> None:
        """Block until the copies, checksums and durable writes of every save so far are done."""
        self.fence()
        self._background.drain()

    def close(self) -> None:
        """Drain background work, unmap memory and, in standalone mode, delete it."""
        if self._closed:
            return
        self._closed = True
        try:
            self.fence()
        finally:
            self._snapshots.close()
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
