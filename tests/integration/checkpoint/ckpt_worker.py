"""A worker process for checkpoint integration tests (run as a script, one per rank).

Modes:
  save        train ``--steps`` steps, saving every step (durable every ``--durable-every``),
              then write ``expected_<rank>_<step>.json`` (tensor checksums) for every saved step
  load        restore the newest step and print one JSON line: step, tier, checksums
  resume      restore like ``load`` when there is a step to resume from, else run ``save``
  hang-save   save step 1, then start saving step 2 and stop half-way through the copy into
              shared memory (printing ``COPYING``) so the test can SIGKILL the process there

With ``WORLD_SIZE`` > 1 it joins a gloo process group at ``MASTER_ADDR:MASTER_PORT``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from trainguard.checkpoint import CheckpointManager, memory


def digest(state: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, torch.Tensor):
            data = value.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
            out[path] = hashlib.sha256(data).hexdigest()
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}/{key}")
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                walk(item, f"{path}/{i}")
        else:
            out[path] = repr(value)

    walk(state, "")
    return out


def build() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.Tanh(), torch.nn.Linear(256, 8))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
    generator = torch.Generator().manual_seed(step)
    optimizer.zero_grad()
    model(torch.randn(16, 64, generator=generator)).pow(2).mean().backward()
    optimizer.step()


def state_of(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    return {"model": model.state_dict(), "optim": optimizer.state_dict()}


def hang_in_copy() -> None:
    """Make the next memory copy stop after its first tensor (the SIGKILL lands mid-save)."""
    original = memory._copy_into

    def copy_then_hang(slot: Any, flat: Any, skeleton: bytes) -> None:
        first = type(flat)(flat.skeleton, flat.refs[:1], flat.tensors[:1], flat.nbytes)
        original(slot, first, b"")
        print("COPYING", flush=True)
        time.sleep(600)

    memory._copy_into = copy_then_hang  # type: ignore[assignment]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["save", "load", "resume", "hang-save"])
    parser.add_argument("--uri")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--durable-every", type=int, default=1)
    args = parser.parse_args()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("gloo")
    manager = CheckpointManager(args.uri, memory_every=1, durable_every=args.durable_every)
    model, optimizer = build()
    state = state_of(model, optimizer)
    step = manager.load_latest(state) if args.mode in ("load", "resume") else None
    if args.mode == "load" or step is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optim"])
        tier = str(manager.restored.tier) if manager.restored else None
        line = {"step": step, "tier": tier, "digest": digest(state_of(model, optimizer))}
        print(json.dumps(line), flush=True)
    else:
        last = 1 if args.mode == "hang-save" else args.steps
        for step in range(1, last + 1):
            train_step(model, optimizer, step)
            manager.save(step, state_of(model, optimizer), user_content={"step": step})
            if args.out is not None:
                name = f"expected_{manager.rank}_{step}.json"
                (args.out / name).write_text(json.dumps(digest(state_of(model, optimizer))))
        manager.wait()
        if args.mode == "hang-save":
            train_step(model, optimizer, 2)
            hang_in_copy()
            manager.save(2, state_of(model, optimizer))
    manager.close()
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
