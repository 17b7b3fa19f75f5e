"""The training script both arms of a benchmark run: same model, data, seed and fault schedule.

``--ckpt trainguard`` checkpoints with `trainguard.checkpoint` (memory tier every
``--memory-every`` steps, durable every ``--durable-every``); ``--ckpt torch`` is the baseline a
user writes today: ``torch.save`` + fsync every ``--save-every`` steps, ``torch.load`` on start.

``--overlap`` (the default for ``trainguard``) saves with ``save_async`` and fences before the
next ``optimizer.step()``; ``--no-overlap`` uses the blocking ``save``.

Steps are padded to ``--step-time`` *before* the save, so a save's stall is never hidden in
the padding (the "GPU" time): a step lasts max(compute, step time) + the time the loop was
blocked by checkpointing, logged per step as ``stall``.

Everything the harness measures is written as JSON lines to ``--events`` (one file per rank,
appended across restarts): ``boot`` phases, every completed ``step`` with its wall time and
stall, ``resume`` with the step and a checksum of the restored state (compared by the harness
with the checksum logged at save time: the correctness gate), ``final`` with the checksum of
the state after the last step (compared with a fault-free run of the same seed), and ``die``
just before a scheduled ``os._exit(1)``. Faults come from ``--faults``: a JSON list of
``[seconds_after_start, rank]``; each fires once (a marker file next to the events records
it) in whichever attempt is running.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import crc32c

T_START = time.time()

import torch  # noqa: E402  (the import time is a boot phase we measure)
import torch.distributed as dist  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

T_IMPORTED = time.time()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--params-mb", type=float, default=50.0, help="fp32 parameter MiB")
    parser.add_argument("--step-time", type=float, default=0.0, help="pad steps to this long")
    parser.add_argument("--ckpt", choices=["trainguard", "torch", "none"], default="trainguard")
    parser.add_argument("--memory-every", type=int, default=10)
    parser.add_argument("--durable-every", type=int, default=50)
    parser.add_argument("--save-every", type=int, default=10)
    parser.add_argument("--overlap", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--ckpt-dir", required=True)
    parser.add_argument("--events", required=True, help="directory of per-rank JSONL files")
    parser.add_argument("--faults", default="[]", help="JSON [[seconds, rank], ...]")
    parser.add_argument("--epoch", type=float, default=0.0, help="wall time faults count from")
    parser.add_argument("--verify", action="store_true", help="log state checksums (slow)")
    parser.add_argument("--max-wall", type=float, default=0.0, help="end after S s from --epoch")
    parser.add_argument("--slow-first-step", type=float, default=0.0, help="extra first-step s")
    parser.add_argument(
        "--fresh-port", type=int, default=0, help="torchrun arm: rendezvous on BASE + restart"
    )
    return parser.parse_args(argv)


class Events:
    """Appends one JSON object per line to this rank's events file."""

    def __init__(self, directory: str, rank: int) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.file = open(Path(directory) / f"rank{rank}.jsonl", "a", buffering=1)  # noqa: SIM115
        self.rank = rank
        self.attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))

    def log(self, kind: str, **fields: Any) -> None:
        record = {"t": time.time(), "kind": kind, "rank": self.rank, "attempt": self.attempt}
        self.file.write(json.dumps({**record, **fields}) + "\n")


def build(params_mb: float) -> tuple[torch.nn.Sequential, torch.optim.Optimizer]:
    """Square linear layers totalling about ``params_mb`` MiB of fp32 parameters (+2x Adam)."""
    width = 1024
    layers = max(1, round(params_mb * 2**20 / 4 / (width * width)))
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(layers)])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    return model, optimizer


def digest(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> str:
    """A checksum of model and optimizer state, to prove a resume restored exactly.

    Computed over the live tensors, independently of how either arm stores them; CRC-32C
    (hardware, ~8 GB/s) so the gate costs both arms little."""
    crc = 0
    tensors = list(model.state_dict().values())
    for slot in optimizer.state_dict()["state"].values():
        tensors += [v for v in slot.values() if isinstance(v, torch.Tensor)]
    for tensor in tensors:
        crc = crc32c.crc32c(tensor.detach().reshape(-1).view(torch.uint8).numpy(), crc)
    return f"{crc:08x}"


class TorchSaveCheckpoints:
    """The baseline: ``torch.save`` + fsync of the full state every N steps (last two kept).

    Ranks agree on the newest step all of them saved (an all-reduce), as a careful user would.
    """

    def __init__(self, directory: str, rank: int, every: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rank, self.every = rank, every

    def _path(self, step: int) -> Path:
        return self.directory / f"step{step:08d}-rank{self.rank}.pt"

    def is_save_step(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def save(self, step: int, state: dict[str, Any]) -> None:
        tmp = self._path(step).with_suffix(".tmp")
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path(step))
        for old in sorted(self.directory.glob(f"step*-rank{self.rank}.pt"))[:-2]:
            old.unlink()

    save_async = save

    def load_latest(self, state: dict[str, Any]) -> int | None:
        steps = [int(p.name[4:12]) for p in self.directory.glob(f"step*-rank{self.rank}.pt")]
        agreed = torch.tensor([max(steps, default=-1)])
        dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
        step = int(agreed)
        if step < 0 or step not in steps:
            return None
        state.update(torch.load(self._path(step), weights_only=False))
        return step

    def wait(self) -> None:
        pass


def checkpoints(args: argparse.Namespace, rank: int) -> Any:
    """The arm's checkpoint store (None for ``--ckpt none``)."""
    if args.ckpt == "none":
        return None
    if args.ckpt == "torch":
        return TorchSaveCheckpoints(args.ckpt_dir, rank, args.save_every)
    # imported here so the baseline arm never pays for importing trainguard
    from trainguard.checkpoint import CheckpointManager  # noqa: PLC0415

    return CheckpointManager(
        args.ckpt_dir, memory_every=args.memory_every, durable_every=args.durable_every
    )


class StallClock:
    """Seconds the training loop spent blocked by checkpointing (both arms, measured alike)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.own = 0.0  # the baseline's saves, timed here

    def total(self) -> float:
        stats = getattr(self.store, "stats", None)
        return float(stats.blocked_s) if stats is not None else self.own


def fire_due_fault(args: argparse.Namespace, rank: int, events: Events, faults: list[Any]) -> None:
    elapsed = time.time() - args.epoch
    for index, (at, victim) in enumerate(faults):
        if victim != rank or elapsed < at:
            continue
        marker = Path(args.events) / f"fault{index}.fired"
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        events.log("die", fault=index)
        os._exit(1)


def out_of_time(args: argparse.Namespace) -> bool:
    """Whether ``--max-wall`` has passed, agreed by all ranks so they stop at the same step."""
    late = torch.tensor([int(time.time() - args.epoch > args.max_wall)])
    dist.all_reduce(late, op=dist.ReduceOp.MAX)
    return bool(late.item())


def train(
    args: argparse.Namespace,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    store: Any,
    events: Events,
    resumed: int | None,
) -> None:
    """The training loop from the step after ``resumed``: compute, pad, save, log."""
    rank = events.rank
    width = model.module[0].in_features
    faults = json.loads(args.faults)
    x = torch.randn(16, width, generator=torch.Generator().manual_seed(rank))
    stalls = StallClock(store)
    overlap = args.overlap and args.ckpt == "trainguard"
    if overlap:
        store.fence_before_step(optimizer)
    for step in range((resumed or 0) + 1, args.steps + 1):
        began, stalled = time.monotonic(), stalls.total()
        if step > (resumed or 0) + 1:  # never during boot: a fault hits a training step
            fire_due_fault(args, rank, events, faults)
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()  # with --overlap: waits here for the previous step's snapshot
        if step == (resumed or 0) + 1:
            time.sleep(args.slow_first_step)
        saving = store is not None and store.is_save_step(step)
        saved = digest(model, optimizer) if saving and args.verify else None  # inside the pad
        pad = args.step_time - (time.monotonic() - began - (stalls.total() - stalled))
        time.sleep(max(0.0, pad))  # the "GPU" time; a save comes after it, never inside it
        if saving:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
            started = time.monotonic()
            (store.save_async if overlap else store.save)(step, state)
            stalls.own += time.monotonic() - started
            events.log("saved", step=step, digest=saved)
        if args.max_wall and out_of_time(args):
            break
        events.log(
            "step", step=step, seconds=time.monotonic() - began, stall=stalls.total() - stalled
        )
        print(f"[rank {rank}] Step: {step} Loss: {loss.item():.6f}", flush=True)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.fresh_port:
        restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
        os.environ["TORCHELASTIC_USE_AGENT_STORE"] = "False"  # rank 0 hosts the fresh store
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{args.fresh_port + restart}",
            rank=int(os.environ["RANK"]),
            world_size=int(os.environ["WORLD_SIZE"]),
        )
    else:
        dist.init_process_group("gloo")
    rank = dist.get_rank()
    events = Events(args.events, rank)
    events.log("boot", phase="start", at=T_START)
    events.log("boot", phase="imported", at=T_IMPORTED)
    model, optimizer = build(args.params_mb)
    model = DistributedDataParallel(model)
    store = checkpoints(args, rank)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
    resumed = store.load_latest(state) if store is not None else None
    if resumed is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    check = args.verify and resumed is not None
    events.log("resume", step=resumed, digest=digest(model, optimizer) if check else None)
    train(args, model=model, optimizer=optimizer, store=store, events=events, resumed=resumed)
    print(f"[rank {rank}] Training finished", flush=True)  # a rule's stopPattern
    if store is not None:
        store.wait()
    events.log("drained")  # checkpoint work left at the end is done (lost time: "drain")
    events.log("final", step=args.steps, digest=digest(model, optimizer) if args.verify else None)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
