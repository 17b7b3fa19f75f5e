"""A small DDP (gloo) training loop for end-to-end tests of the controller and agent.

Prints ``Step: N Loss: X`` on every rank. ``--crash-at N --crash-rank R`` makes rank R exit 1
at step N (only on the first attempt unless ``--crash-always``), which is how tests produce
worker crashes that escalate.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--step-time", type=float, default=0.05)
    parser.add_argument("--crash-at", type=int, default=-1)
    parser.add_argument("--crash-rank", type=int, default=0)
    parser.add_argument("--crash-always", action="store_true")
    args = parser.parse_args()
    dist.init_process_group("gloo")
    rank, restarts = dist.get_rank(), int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    target = torch.arange(8, dtype=torch.float32) / 8
    for step in range(1, args.steps + 1):
        started = time.monotonic()
        generator = torch.Generator().manual_seed(step * 100 + rank)
        x = torch.randn(32, 8, generator=generator)
        loss = ((model(x).squeeze(-1) - x @ target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"[rank {rank}] Step: {step} Loss: {loss.item():.6f}", flush=True)
        crash_now = step == args.crash_at and rank == args.crash_rank
        if crash_now and (args.crash_always or restarts == 0):
            print(f"[rank {rank}] crashing on purpose at step {step}", flush=True)
            os._exit(1)
        time.sleep(max(0.0, args.step_time - (time.monotonic() - started)))
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
