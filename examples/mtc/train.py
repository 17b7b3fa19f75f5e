"""A HyperPod training script using Managed Tiered Checkpointing, unchanged, under trainguard.

This is the "Complete Distributed Training Example" of the ``amzn-sagemaker-checkpointing``
README, function for function (``setup_distributed``, ``create_model``, ``main``: DDP, AdamW with
a StepLR scheduler, ``SageMakerCheckpointConfig``, ``async_save`` with
``SageMakerTieredStorageWriter``, ``load`` with ``SageMakerTieredStorageReader`` and no step, so
the reader asks the in-memory service for the latest complete step), on CPU with gloo. Where the
README feeds random labels to ``nn.Linear`` ("replace with your actual training logic"), the
labels here come from a fixed hidden linear classifier, so the loss really falls. Nothing in it
knows about trainguard: under ``trainguard run`` each node runs an MTC server and the library's
default URL reaches it (see docs/checkpointing.md, "Coming from HyperPod MTC").

It prints ``[rank R] Step: N Loss: X`` every step (what the manifest's log rules watch) and
``[rank R] Resumed training from step N`` when it restarts from a checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn  # noqa: PLR0402 - as in the README
from amzn_sagemaker_checkpointing.checkpointing.filesystem.filesystem import (
    SageMakerTieredStorageReader,
    SageMakerTieredStorageWriter,
)
from amzn_sagemaker_checkpointing.config.sagemaker_checkpoint_config import (
    SageMakerCheckpointConfig,
)
from torch.distributed.checkpoint import async_save, load
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: N817 - as in the README

FEATURES, CLASSES, BATCH = 100, 10, 32


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps in total")
    parser.add_argument("--step-time", type=float, default=0.1, help="seconds per step at least")
    parser.add_argument("--in-memory-ckpt-freq", type=int, default=10)
    return parser.parse_args(argv)


def setup_distributed() -> None:
    """Initialize distributed training (the README's NCCL on GPUs; gloo on CPU)."""
    dist.init_process_group(backend="gloo")


def create_model() -> DDP:
    """Create and wrap model with DDP."""
    torch.manual_seed(0)
    return DDP(nn.Linear(FEATURES, CLASSES))


def resume(
    config: SageMakerCheckpointConfig,
    model: DDP,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler,
    group: dist.ProcessGroup,
) -> int:
    """Resume from checkpoint if available, as the README does; the step to start at."""
    try:
        state_dict = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "lr_scheduler": lr_scheduler.state_dict(),
            "step": 0,
        }
        storage_reader = SageMakerTieredStorageReader(checkpoint_config=config)
        load(state_dict, storage_reader=storage_reader, process_group=group)
        model.load_state_dict(state_dict["model"])
        optimizer.load_state_dict(state_dict["optimizer"])
        lr_scheduler.load_state_dict(state_dict["lr_scheduler"])
        start_step = int(state_dict["step"]) + 1
        print(f"[rank {dist.get_rank()}] Resumed training from step {start_step}", flush=True)
        return start_step
    except BaseException as e:  # the README's pattern: no checkpoint yet, start from scratch
        print(f"No checkpoint found, starting from scratch: {str(e)[:200]}", flush=True)
        return 1


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    setup_distributed()
    rank = dist.get_rank()
    torch.manual_seed(1234)  # the hidden classifier the labels come from: the same on every rank
    labeller = nn.Linear(FEATURES, CLASSES).requires_grad_(False)

    # Model and optimizer setup
    model = create_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.9)

    # Checkpoint configuration
    checkpoint_config = SageMakerCheckpointConfig(
        namespace=os.environ.get("TRAINING_JOB_NAME", f"job-{int(time.time())}"),
        world_size=dist.get_world_size(),
    )
    # DCP's own collectives get a gloo group of their own: async_save runs them in a background
    # thread, and on CPU they would otherwise share the default group with DDP's all-reduces
    # (on GPUs the README's training runs on NCCL and this is `backend="cpu:gloo,cuda:nccl"`).
    checkpoint_group = dist.new_group(backend="gloo")
    start_step = resume(checkpoint_config, model, optimizer, lr_scheduler, checkpoint_group)

    # Training loop
    future = None
    for step in range(start_step, args.steps + 1):
        began = time.monotonic()
        optimizer.zero_grad()

        # This rank's batch of this step: the same after a resume
        generator = torch.Generator().manual_seed(step * 1000 + rank)
        inputs = torch.randn(BATCH, FEATURES, generator=generator)
        targets = labeller(inputs).argmax(dim=1)
        outputs = model(inputs)
        loss = nn.CrossEntropyLoss()(outputs, targets)

        loss.backward()
        optimizer.step()
        lr_scheduler.step()
        print(f"[rank {rank}] Step: {step} Loss: {loss.item():.6f}", flush=True)

        # Save checkpoint
        if step % args.in_memory_ckpt_freq == 0:
            state_dict = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "lr_scheduler": lr_scheduler.state_dict(),
                "step": step,
            }
            storage_writer = SageMakerTieredStorageWriter(
                checkpoint_config=checkpoint_config, step=step
            )
            if future is not None:  # wait for the previous checkpoint, as the README does
                exc = future.exception()
                if exc:
                    print(f"Failure in saving previous checkpoint:{exc!s}", flush=True)
            future = async_save(
                state_dict=state_dict,
                storage_writer=storage_writer,
                process_group=checkpoint_group,
            )
        time.sleep(max(0.0, args.step_time - (time.monotonic() - began)))
    if future is not None:
        future.result()
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
