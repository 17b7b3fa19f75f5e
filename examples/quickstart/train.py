"""trainguard's quickstart training script: DDP (gloo) on CPU that really learns, and resumes.

The job reads one stream of samples made on the fly from a fixed seed (a noisy teacher network);
each step every rank takes its slice of the global batch, found from the number of samples the
job has consumed (kept in the checkpoint), so a job resumed at another world size — an elastic
resize — goes on where it stopped. It trains a small MLP with Adam and prints
``[rank R] Step: N Loss: X`` each step — the lines the manifest's log rules watch.
State is checkpointed with `trainguard.checkpoint`: to node-local memory every ``--memory-every``
steps and to the durable directory (``$TRAINGUARD_CHECKPOINT_DIR``, set per job by trainguard)
every ``--durable-every`` steps. On every start it resumes from the newest step all ranks hold,
so a killed worker, a hung worker or a lost node costs at most one memory interval of work.

Run it under trainguard (``trainguard run examples/quickstart/job.yaml``), under ``hyperpodrun``
or under plain ``torchrun --nproc-per-node=2 train.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from trainguard.checkpoint import CheckpointManager

FEATURES, HIDDEN, BATCH = 16, 64, 64


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps in total")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument(
        "--step-time", type=float, default=0.05, help="pad each step to at least this many seconds"
    )
    parser.add_argument("--memory-every", type=int, default=10, help="memory-tier interval")
    parser.add_argument("--durable-every", type=int, default=50, help="durable-tier interval")
    parser.add_argument(
        "--checkpoint-dir",
        default=os.environ.get("TRAINGUARD_CHECKPOINT_DIR", "checkpoints/quickstart"),
        help="durable checkpoint directory or fsspec URI (default: $TRAINGUARD_CHECKPOINT_DIR)",
    )
    return parser.parse_args(argv)


def teacher() -> torch.nn.Module:
    """The function to learn: a fixed random network, the same on every rank."""
    torch.manual_seed(1234)
    layers = [torch.nn.Linear(FEATURES, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1)]
    net = torch.nn.Sequential(*layers)
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net


def batch(first: int, target: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples ``first`` .. ``first + BATCH - 1`` of the job's stream: the same at any size."""
    generator = torch.Generator().manual_seed(first // BATCH)
    x = torch.randn(BATCH, FEATURES, generator=generator)
    noise = 0.01 * torch.randn(BATCH, 1, generator=generator)
    return x, target(x) + noise


def snapshot(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, first_loss: torch.Tensor
) -> dict[str, object]:
    """What a checkpoint holds: model and optimizer state, and the loss the run started at."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "first_loss": first_loss,
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    target = teacher()
    torch.manual_seed(0)
    model = DistributedDataParallel(
        torch.nn.Sequential(
            torch.nn.Linear(FEATURES, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 1)
        )
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    first_loss = torch.zeros(1)
    checkpoints = CheckpointManager(
        args.checkpoint_dir, memory_every=args.memory_every, durable_every=args.durable_every
    )
    state = snapshot(model, optimizer, first_loss)
    resumed = checkpoints.load_latest(state)
    samples = 0  # consumed by the whole job: the data position at any world size
    if resumed is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        first_loss.copy_(state["first_loss"])
        samples = (checkpoints.restored.user_content or {}).get("samples", resumed * world * BATCH)
    start = (resumed or 0) + 1
    where = f"step {start} of {world} ranks (resumed: {resumed})"
    print(f"[rank {rank}] starting at {where}", flush=True)
    recent: list[float] = []
    for step in range(start, args.steps + 1):
        began = time.monotonic()
        x, y = batch(samples + rank * BATCH, target)
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        samples += world * BATCH
        if step == 1:  # the job's mean: checkpointed state must be the same on every rank
            first_loss.fill_(loss.item() / world)
            dist.all_reduce(first_loss)
        recent = [*recent[-9:], loss.item()]
        print(f"[rank {rank}] Step: {step} Loss: {loss.item():.6f}", flush=True)
        checkpoints.report_step(step, total=args.steps, loss=loss.item())
        if checkpoints.is_save_step(step):
            state = snapshot(model, optimizer, first_loss)
            checkpoints.save(step, state, user_content={"samples": samples})
        time.sleep(max(0.0, args.step_time - (time.monotonic() - began)))
    checkpoints.wait()
    checkpoints.close()
    if rank == 0 and recent:
        final = sum(recent) / len(recent)
        drop = 1 - final / first_loss.item() if first_loss.item() else float("nan")
        print(
            f"[rank 0] Training done: loss {first_loss.item():.6f} -> {final:.6f} "
            f"({drop:.0%} lower)",
            flush=True,
        )
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
