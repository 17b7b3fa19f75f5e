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
socket_path=None, slot_wait_timeout=600.0, durable_file_mode=None, background_nice=10,
clock=None)``:

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
- ``durable_file_mode``: mode of durable files (int or octal string); defaults to
  ``TRAINGUARD_CHECKPOINT_FILE_MODE``, else ``0600`` (directories ``0700``: ``x`` per ``r``).
  Memory-tier files and peer replicas are always ``0600`` in ``0700`` directories.
- ``background_nice``: how much lower the background thread (checksums, durable writes) runs
  than the training thread (nice; 0 = the same).

Overlapped saves: ``ckpt.fence_before_step(optimizer)`` once, then ``ckpt.save_async(step,
state)`` right after ``optimizer.step()``: the copy into shared memory runs beside the next
forward and backward, and the next ``optimizer.step()`` waits for it only if it is not done
(`trainguard.checkpoint.overlap`; state changed elsewhere, such as BatchNorm statistics, needs
its own ``ckpt.fence()``).

Bounded-queue policy: the memory tier is a ring of ``memory_keep + 2`` preallocated slots;
background work (checksum, durable copy) pins the slot it reads. When every slot is committed
or pinned, ``save`` *blocks* until one is free (counted in ``stats.slot_waits``), up to
``slot_wait_timeout``. Background failures (durable tier full or unreachable) are logged at
ERROR, counted in ``errors``, reported to the agent (``ckpt_save_failed``, which the
controller turns into a ``CheckpointFailed`` event) and never stop training. Temporaries of
saves interrupted by a killed worker are swept on construction and by retention.

Progress: ``ckpt.report_step(step, total=steps, loss=loss.item())`` once per step tells the
agent how far training is (throttled; ``trainguard run`` shows step/total, ETA and loss from
it, and the controller times "training resumed" after a restart by the first report).

Also: ``save_checkpoint`` / ``load_checkpoint`` shaped like HyperPod's MTC examples.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainguard.checkpoint.base import Restored, TierName
    from trainguard.checkpoint.helpers import load_checkpoint, save_checkpoint
    from trainguard.checkpoint.manager import CheckpointManager
    from trainguard.checkpoint.settings import SaveStats

_HOMES = {
    "CheckpointManager": "trainguard.checkpoint.manager",
    "Restored": "trainguard.checkpoint.base",
    "SaveStats": "trainguard.checkpoint.settings",
    "TierName": "trainguard.checkpoint.base",
    "load_checkpoint": "trainguard.checkpoint.helpers",
    "save_checkpoint": "trainguard.checkpoint.helpers",
}
"""Where each public name lives: imported on first use (PEP 562), because importing torch
here would make every module of the package pay for it — the MTC server
(`trainguard.checkpoint.mtc`) stores opaque bytes and runs without torch."""

__all__ = [
    "CheckpointManager",
    "Restored",
    "SaveStats",
    "TierName",
    "load_checkpoint",
    "save_checkpoint",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
