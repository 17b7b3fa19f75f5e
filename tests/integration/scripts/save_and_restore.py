"""A worker that saves three checkpoints, then restores the newest one, printing loss lines.

Usage: ``save_and_restore.py <durable uri>``. Each save's blocking part is a real stall of the
loop that the agent times (``ckpt_save_begin``/``_end``); the restore is a real load from the
memory tier that ``CheckpointManager.load_latest`` times and reports in ``resume_report``.
"""

from __future__ import annotations

import sys

import torch

from trainguard.checkpoint import CheckpointManager


def main() -> int:
    manager = CheckpointManager(sys.argv[1], job="stall", memory_every=1, durable_every=100)
    for step in (1, 2, 3):
        print(f"Step: {step} Loss: {1.0 / step:.3f}", flush=True)
        manager.save(step, {"w": torch.full((256 * 1024,), float(step))})
    manager.wait()
    state = {"w": torch.zeros(256 * 1024)}
    restored = manager.load_latest(state)
    print(f"RESTORED step={restored} w={float(state['w'][0])}", flush=True)
    manager.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
