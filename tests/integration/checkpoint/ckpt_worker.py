"""A worker process for checkpoint integration tests (run as a script, one per rank).

Modes:
  save        train ``--steps`` steps, saving every step (durable every ``--durable-every``),
              then write ``expected_<rank>_<step>.json`` (tensor checksums) for every saved step
  load        restore the newest step and print one JSON line: step, tier, checksums
  resume      restore like ``load`` when there is a step to resume from, else run ``save``
  continue    restore like ``load`` (printing its line), then train and save like ``save``
              from the step after the one restored up to ``--steps``
  hang-save   save step 1, then start saving step 2 and stop half-way through the copy into
              shared memory (printing ``COPYING``) so the test can SIGKILL the process there
  hang-durable  save step 1 (durable), then save step 2 and stop its durable write after DCP
              wrote the files into ``.tmp-step_2`` and before the commit (printing ``WRITING``)

With ``WORLD_SIZE`` > 1 it joins a gloo process group at ``MASTER_ADDR:MASTER_PORT``. With
``--ddp`` the model is wrapped in DistributedDataParallel and every rank trains on its own data
(gradients averaged), as an elastic data-parallel script does; the load line then also carries
the resume record (world sizes, reason).
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
from torch.nn.parallel import DistributedDataParallel

from trainguard.checkpoint import CheckpointManager, durable, slot_layout


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


def train_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int, *, seed: int = 0
) -> None:
    generator = torch.Generator().manual_seed(step * 1000 + seed)
    optimizer.zero_grad()
    model(torch.randn(16, 64, generator=generator)).pow(2).mean().backward()
    optimizer.step()


def state_of(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    return {"model": model.state_dict(), "optim": optimizer.state_dict()}


def hang_in_copy() -> None:
    """Make the next memory copy stop after its first tensor (the SIGKILL lands mid-save)."""
    original = slot_layout.copy_into

    def copy_then_hang(slot: Any, flat: Any, skeleton: bytes) -> None:
        first = type(flat)(flat.skeleton, flat.refs[:1], flat.tensors[:1], flat.nbytes)
        original(slot, first, b"")
        print("COPYING", flush=True)
        time.sleep(600)

    slot_layout.copy_into = copy_then_hang  # type: ignore[assignment]


def hang_before_commit() -> None:
    """Make the next durable write stop once its files are in the temporary directory."""

    def list_then_hang(self: Any, tmp: str) -> Any:
        print("WRITING", flush=True)
        time.sleep(600)

    durable.DurableTier._own_entries = list_then_hang  # type: ignore[method-assign]


def restored_line(
    manager: CheckpointManager, step: int | None, state: dict[str, Any], fresh: dict[str, str]
) -> str:
    """The load's result; ``fresh`` is the digest before the load (equal when nothing loaded)."""
    record = manager.restored
    line = {
        "step": step,
        "tier": str(record.tier) if record else None,
        "digest": digest(state),
        "untouched": digest(state) == fresh,
        "world_size": record.world_size if record else None,
        "saved_world_size": record.saved_world_size if record else None,
        "reason": record.reason if record else None,
    }
    return json.dumps(line)


def train(args: argparse.Namespace, manager: CheckpointManager, model: Any, optim: Any) -> None:
    first = (manager.restored.step or 0) + 1 if manager.restored else 1
    last = 1 if args.mode.startswith("hang-") else args.steps
    seed = manager.rank if args.ddp else 0
    for step in range(first, last + 1):
        train_step(model, optim, step, seed=seed)
        manager.save(step, state_of(model, optim), user_content={"step": step})
        if args.out is not None:
            name = f"expected_{manager.rank}_{step}.json"
            (args.out / name).write_text(json.dumps(digest(state_of(model, optim))))
    manager.wait()


def hang(args: argparse.Namespace, manager: CheckpointManager, model: Any, optim: Any) -> None:
    train_step(model, optim, 2)
    if args.mode == "hang-save":
        hang_in_copy()
        manager.save(2, state_of(model, optim))
    if args.mode == "hang-durable":
        hang_before_commit()
        manager.save(2, state_of(model, optim))
        manager.wait()


def main() -> int:
    parser = argparse.ArgumentParser()
    modes = ["save", "load", "resume", "continue", "hang-save", "hang-durable"]
    parser.add_argument("mode", choices=modes)
    parser.add_argument("--uri")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--durable-every", type=int, default=1)
    parser.add_argument("--ddp", action="store_true")
    args = parser.parse_args()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 or args.ddp:
        dist.init_process_group("gloo")
    manager = CheckpointManager(args.uri, memory_every=1, durable_every=args.durable_every)
    model, optimizer = build()
    if args.ddp:
        model = DistributedDataParallel(model)
    state = state_of(model, optimizer)
    fresh = digest(state)
    step = manager.load_latest(state) if args.mode in ("load", "resume", "continue") else None
    if args.mode in ("load", "continue") or step is not None:
        if step is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optim"])
        print(restored_line(manager, step, state_of(model, optimizer), fresh), flush=True)
    if args.mode in ("save", "continue") or (args.mode == "resume" and step is None):
        train(args, manager, model, optimizer)
    if args.mode.startswith("hang-"):
        train(args, manager, model, optimizer)
        hang(args, manager, model, optimizer)
    manager.close()
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
