"""A worker whose durable checkpoint tier is a full disk: one save, reported, training goes on.

Usage: ``full_disk_save.py <durable uri>``. Saves 1 MiB at step 1 (memory and durable), waits
for the background durable write to fail, and exits 0 — as training does when only the
durable tier is lost.
"""

from __future__ import annotations

import sys

import torch

from trainguard.checkpoint import CheckpointManager


def main() -> int:
    manager = CheckpointManager(sys.argv[1], job="full", memory_every=1, durable_every=1)
    manager.save(1, {"w": torch.ones(256 * 1024)})
    manager.wait()
    print(f"DONE errors={manager.errors.by_kind}", flush=True)
    manager.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
