"""How long a checkpoint save blocks the training loop: trainguard's memory tier against the
alternatives a user has today, in one run, trials alternating between arms.

Arms per state size (parameters + Adam moments of an MLP, float32):

- ``memcpy``: ``copy_`` of every tensor into a preallocated, pre-faulted buffer (the floor);
- ``memcpy_shm``: the same into a pre-faulted shared-memory mapping like our slots (the floor
  of any copy into /dev/shm);
- ``ours``: `CheckpointManager.save` (memory tier; a durable DCP copy every save runs in the
  background and is drained outside the timed region);
- ``ours_overlapped``: the in-loop stall of `CheckpointManager.save_async`: the call, then one
  forward and backward of the next step (not timed), then the fence an ``optimizer.step()``
  would wait for;
- ``torch.save``: ``torch.save`` to a local file + ``fsync``; ``torch_save_shm`` to /dev/shm;
- ``dcp.save``: torch.distributed.checkpoint ``save`` to a local directory;
- ``dcp.async_save``: the time until ``async_save`` returns (staging), its write drained after;
  ``dcp_async_save_cached`` with the writer's staging cache (``cache_staged_state_dict=True``,
  one writer reused across saves, as its documentation advises for repeated saves). That cache
  is pinned memory, which torch refuses without an accelerator: the arm runs on GPU machines
  only, and its rows are absent elsewhere.

Restore: ``load_latest`` from the memory tier vs ``torch.load`` of the file. Step-time rise:
training steps timed while our background persist (checksum + durable DCP write) runs vs idle.

``python -m bench checkpoint [--quick] [--sizes 150,600] [--trials N]``; rows go to
``bench/results/checkpoint.json`` (names without a suffix are the ~200 MB size).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint import FileSystemWriter
from torch.distributed.checkpoint.state_dict_saver import async_save
from torch.distributed.checkpoint.state_dict_saver import save as dcp_save

from bench.common import Row, write_results
from trainguard.checkpoint import CheckpointManager
from trainguard.checkpoint.slots import Slot

MB = 1_000_000
WIDTH = 1024
DEFAULT_MB = 200
QUICK_MB = 20
ACCELERATOR = torch.cuda.is_available()
EXTRA_MB = (150, 600)


def build_state(megabytes: int, seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """An MLP + Adam whose parameters and two moments total about ``megabytes``."""
    torch.manual_seed(seed)
    per_layer = (WIDTH * WIDTH + WIDTH) * 4 * 3
    layers = max(1, round(megabytes * MB / per_layer))
    model = torch.nn.Sequential(*[torch.nn.Linear(WIDTH, WIDTH) for _ in range(layers)])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    train_step(model, optimizer)
    return model, optimizer


def forward_backward(model: torch.nn.Module) -> None:
    """The part of a step that runs while an overlapped snapshot copies (no optimizer step)."""
    model(torch.randn(8, WIDTH)).pow(2).mean().backward()


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad()
    model(torch.randn(8, WIDTH)).pow(2).mean().backward()
    optimizer.step()


def state_of(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    return {"model": model.state_dict(), "optim": optimizer.state_dict()}


def tensors(state: Any) -> list[torch.Tensor]:
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, dict):
        return [t for v in state.values() for t in tensors(v)]
    if isinstance(state, list | tuple):
        return [t for v in state for t in tensors(v)]
    return []


def nbytes(state: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors(state))


class Arms:
    """Each arm is a function that saves ``state`` and returns the seconds it blocked."""

    def __init__(
        self, state: dict[str, Any], work: Path, *, compute: Callable[[], None] | None = None
    ) -> None:
        self.state, self.work = state, work
        self.compute = compute or (lambda: None)
        self.floor = torch.empty(nbytes(state), dtype=torch.uint8)
        self.floor.fill_(0)  # pre-fault every page
        self.shm_dir = Path(tempfile.mkdtemp(prefix="tg-bench-shm-", dir=_shm()))
        self.shm_slot = Slot(self.shm_dir / "floor.bin", nbytes(state))
        self.shm_slot.bytes.fill_(0)
        self.cached_writer = FileSystemWriter(
            str(work / "dcp_cached"), cache_staged_state_dict=True
        )
        self.manager = CheckpointManager(
            f"file://{work}/ours",
            job="bench",
            memory_every=1,
            durable_every=1,
        )
        self.step = 0

    def memcpy(self) -> float:
        return _copy_all(self.state, self.floor)

    def memcpy_shm(self) -> float:
        return _copy_all(self.state, self.shm_slot.bytes)

    def ours_overlapped(self) -> float:
        self.step += 1
        started = time.perf_counter()
        self.manager.save_async(self.step, self.state)
        blocked = time.perf_counter() - started
        self.compute()  # the next step's forward and backward, beside the copy
        fenced = time.perf_counter()
        self.manager.fence()
        blocked += time.perf_counter() - fenced
        self.manager.wait()
        return blocked

    def torch_save_shm(self) -> float:
        path = self.shm_dir / "model.pt"
        started = time.perf_counter()
        with open(path, "wb") as handle:
            torch.save(self.state, handle)
        return time.perf_counter() - started

    def dcp_async_save_cached(self) -> float:
        started = time.perf_counter()
        future = async_save(self.state, storage_writer=self.cached_writer, no_dist=True)
        blocked = time.perf_counter() - started
        future.result()
        return blocked

    def ours(self) -> float:
        self.step += 1
        started = time.perf_counter()
        self.manager.save(self.step, self.state)
        blocked = time.perf_counter() - started
        self.manager.wait()  # background work must not bleed into the next arm
        return blocked

    def torch_save(self) -> float:
        path = self.work / "model.pt"
        started = time.perf_counter()
        with open(path, "wb") as handle:
            torch.save(self.state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        return time.perf_counter() - started

    def dcp_save(self) -> float:
        target = self.work / "dcp"
        shutil.rmtree(target, ignore_errors=True)
        started = time.perf_counter()
        dcp_save(self.state, storage_writer=FileSystemWriter(str(target)), no_dist=True)
        return time.perf_counter() - started

    def dcp_async_save(self) -> float:
        target = self.work / "dcp_async"
        shutil.rmtree(target, ignore_errors=True)
        started = time.perf_counter()
        future = async_save(self.state, storage_writer=FileSystemWriter(str(target)), no_dist=True)
        blocked = time.perf_counter() - started
        future.result()
        return blocked

    def close(self) -> None:
        self.manager.close()
        self.shm_slot.close()
        shutil.rmtree(self.shm_dir, ignore_errors=True)


def _copy_all(state: dict[str, Any], buffer: torch.Tensor) -> float:
    """Seconds to ``copy_`` every tensor of ``state`` into ``buffer``, back to back."""
    started = time.perf_counter()
    offset = 0
    for t in tensors(state):
        size = t.numel() * t.element_size()
        buffer[offset : offset + size].view(t.dtype).view(t.shape).copy_(t)
        offset += size
    return time.perf_counter() - started


def _shm() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") else None


def alternate(arms: dict[str, Callable[[], float]], trials: int) -> dict[str, list[float]]:
    """Every trial runs every arm once, in a seeded random order; one warm-up round first."""
    for arm in arms.values():
        arm()
    times: dict[str, list[float]] = {name: [] for name in arms}
    order = random.Random(18)
    for _ in range(trials):
        for name in order.sample(list(arms), len(arms)):
            times[name].append(arms[name]())
    return times


def restore_times(
    arms: Arms, model: torch.nn.Module, trials: int
) -> tuple[list[float], list[float]]:
    """Seconds per trial: ``load_latest`` from memory vs ``torch.load`` of the same state."""
    ours, disk = [], []
    target = state_of(model, torch.optim.Adam(model.parameters()))
    arms.manager.load_latest(target)  # warm-up (maps the slots)
    for _ in range(trials):
        started = time.perf_counter()
        arms.manager.load_latest(target)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        torch.load(arms.work / "model.pt", weights_only=True)
        disk.append(time.perf_counter() - started)
    return ours, disk


def step_rise(
    arms: Arms, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[list[float], list[float]]:
    """Step times while the background persist runs vs idle."""
    idle = [timed_step(model, optimizer) for _ in range(10)]
    busy: list[float] = []
    for _ in range(3):
        arms.step += 1
        arms.manager.save(arms.step, arms.state)
        while arms.manager.busy and len(busy) < 200:
            busy.append(timed_step(model, optimizer))
        arms.manager.wait()
    return busy, idle


def timed_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> float:
    started = time.perf_counter()
    train_step(model, optimizer)
    return time.perf_counter() - started


def measure(megabytes: int, trials: int, suffix: str) -> list[Row]:
    model, optimizer = build_state(megabytes)
    state = state_of(model, optimizer)
    size = nbytes(state) / MB
    print(f"state {size:.0f} MB, {trials} trials per arm", flush=True)
    work = Path(tempfile.mkdtemp(prefix="tg-bench-ckpt-", dir=os.environ.get("BENCH_DISK")))
    arms = Arms(state, work, compute=lambda: forward_backward(model))
    try:
        times = alternate(
            {
                "memcpy": arms.memcpy,
                "memcpy_shm": arms.memcpy_shm,
                "ours": arms.ours,
                "ours_overlapped": arms.ours_overlapped,
                "torch_save": arms.torch_save,
                "torch_save_shm": arms.torch_save_shm,
                "dcp_save": arms.dcp_save,
                "dcp_async_save": arms.dcp_async_save,
            }
            | ({"dcp_async_save_cached": arms.dcp_async_save_cached} if ACCELERATOR else {}),
            trials,
        )
        rows = [
            Row.of(f"save_stall_vs_{key}{suffix}", times["ours"], times[key], "s")
            for key in times
            if key not in {"ours", "ours_overlapped"}
        ]
        rows += [
            Row.of(
                f"save_stall_overlapped_vs_{key}{suffix}", times["ours_overlapped"], times[key], "s"
            )
            for key in ("memcpy_shm", "ours", "dcp_async_save_cached")
            if key in times
        ]
        restore_ours, restore_disk = restore_times(arms, model, trials)
        rows.append(Row.of(f"restore_memory_vs_disk{suffix}", restore_ours, restore_disk, "s"))
        busy, idle = step_rise(arms, model, optimizer)
        rows.append(Row.of(f"step_time_during_persist_vs_idle{suffix}", busy, idle, "s"))
        rows.append(Row(f"state_size{suffix}", size, None, "MB"))
        rows.append(Row(f"slot_waits{suffix}", float(arms.manager.stats.slot_waits), None, "count"))
        return rows
    finally:
        arms.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench checkpoint")
    parser.add_argument("--quick", action="store_true", help="small state, few trials")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in EXTRA_MB),
        help="extra sizes in MB (rows get a _<N>mb suffix); empty for none",
    )
    parser.add_argument("--name", default="checkpoint", help="results file name")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # OMP_NUM_THREADS=1, as every benchmark of the project
    warnings.filterwarnings("ignore", message=".*assuming the intent is to", category=UserWarning)
    trials = args.trials or (3 if args.quick else 7)
    main_mb = QUICK_MB if args.quick else DEFAULT_MB
    extra = [] if args.quick or not args.sizes else [int(s) for s in args.sizes.split(",")]
    rows = measure(main_mb, trials, "")
    for megabytes in extra:
        rows += measure(megabytes, max(3, trials // 2), f"_{megabytes}mb")
    write_results(args.name, rows)
    return 0
