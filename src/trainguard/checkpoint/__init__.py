"""Tiered checkpointing for training scripts: memory tier, durable tier, auto-resume.

Typical use, one manager per rank::

    from trainguard.checkpoint import CheckpointManager

    ckpt = CheckpointManager("file:///shared/ckpt", memory_every=10, durable_every=100)
    state = {"model": model.state_dict(), "optim": optimizer.state_dict()}
    start = ckpt.load_latest(state)            # None: start from scratch
    if start is not None:
        model.load_state_dict(state["model"]); optimizer.load_state_dict(state["optim"])
    for step in range((start or 0) + 1, steps + 1):
        train_one_step()
        ckpt.save(step, {"model": model.state_dict(), "optim": optimizer.state_dict()})
    ckpt.close()

``CheckpointManager(directory=None, *, durable_uri=None, job=None, rank=None, world_size=None,
memory_every=10, durable_every=20, memory_keep=2, durable_keep=2, shm_dir=None,
socket_path=None, slot_wait_timeout=600.0, clock=None)``:

- ``directory`` / ``durable_uri``: fsspec URI of the durable tier (``/path``, ``file://``,
  ``s3://`` with s3fs installed...); ``None`` disables the durable tier.
- ``memory_every`` / ``durable_every``: save to memory every N steps (HyperPod's
  ``in_memory_checkpointing_freq``) and to the durable tier every M steps
  (``s3_checkpointing_freq``); 0 disables. A durable step is also a memory step.
- ``memory_keep`` / ``durable_keep``: retention K and M (newest steps kept).
- ``job``, ``rank``, ``world_size``: default to ``TRAINGUARD_JOB_NAME``, torch.distributed
  (when initialized, then the constructor is collective: it creates a gloo group for
  checkpoint collectives), else ``RANK`` / ``WORLD_SIZE``.
- ``shm_dir``: the node-local memory root; defaults to ``TRAINGUARD_SHM_DIR`` (set by the
  agent; files there outlive a crashed worker). Without either, a private directory under
  /dev/shm is used and deleted by ``close()``.
- ``socket_path``: the agent socket; defaults to ``HYPERPOD_ELASTICAGENT_SOCKET_SERVER_PATH``
  (reports are skipped without it).

Bounded-queue policy: the memory tier is a ring of ``memory_keep + 2`` preallocated slots;
background work (checksum, durable copy) pins the slot it reads. When every slot is committed
or pinned, ``save`` *blocks* until one is free (counted in ``stats.slot_waits``), up to
``slot_wait_timeout``. Background failures (durable tier full or unreachable) are logged at
ERROR, counted in ``errors``, and never stop training.

Also: ``save_checkpoint`` / ``load_checkpoint`` shaped like HyperPod's MTC examples.
"""

from __future__ import annotations

from trainguard.checkpoint.base import Restored, TierName
from trainguard.checkpoint.helpers import load_checkpoint, save_checkpoint
from trainguard.checkpoint.manager import CheckpointManager, SaveStats

__all__ = [
    "CheckpointManager",
    "Restored",
    "SaveStats",
    "TierName",
    "load_checkpoint",
    "save_checkpoint",
]
