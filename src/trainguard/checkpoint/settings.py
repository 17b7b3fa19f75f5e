"""The manager's settings and figures: option checks, the standalone memory root, `SaveStats`.

Kept apart from `trainguard.checkpoint.manager` so the manager module holds the save and
restore logic only.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trainguard import constants as c
from trainguard.errors import UsageError

DEFAULT_JOB = "default"
STANDALONE_PARENT = Path("/dev/shm")


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


def check_options(
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


def private_root(shm_dir: str | os.PathLike[str] | None) -> Path | None:
    """A private memory root for standalone use (no agent, no explicit dir); `close` removes it."""
    if shm_dir is not None or os.environ.get(c.ENV_SHM_DIR):
        return None
    parent = STANDALONE_PARENT if STANDALONE_PARENT.is_dir() else None
    return Path(tempfile.mkdtemp(prefix="trainguard-ckpt-", dir=parent))
