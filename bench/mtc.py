"""Save stall of HyperPod's MTC library through our MTC server vs `trainguard.checkpoint`'s own.

Both arms save the same state dict (a stack of float32 linear layers) and measure the seconds
the training thread is blocked, alternating, medians:

- **mtc** (ours in the row): ``torch.distributed.checkpoint.async_save`` with the library's
  ``SageMakerTieredStorageWriter``, unmodified, talking to ``trainguard checkpoint serve``
  running as its own process (reached through ``http_proxy``, as pods of the local backend do).
  The stall is the ``async_save`` call (DCP stages the state to CPU copies, then returns); the
  upload runs in the background and its time is reported as a second row;
- **baseline**: `CheckpointManager.save` of the memory tier (copy into shared memory, return).

So the ratio says how much more the loop waits when a HyperPod script keeps its code and uses
our server instead of moving to our API. World size 1, gloo, CPU. Run:
``python -m bench mtc [--quick]`` (quick: 16 MB, 3 trials).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import torch
import torch.distributed as dist

from bench.common import Row, median, write_results
from trainguard.checkpoint import CheckpointManager


def make_state(mb: int) -> dict[str, torch.Tensor]:
    """About ``mb`` MiB of float32 weights in 4 MiB layers."""
    layer = 1 << 20  # floats per layer: 4 MiB
    return {f"layer{i}": torch.randn(layer) for i in range(max(1, mb // 4))}


def start_server(shm: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        *(sys.executable, "-m", "trainguard", "checkpoint", "serve", "--port", str(port)),
        *("--memory-dir", str(shm / "mtc")),
    ]
    process = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("MTC server did not start")


class Arms:
    """The two ways to save; each returns the seconds the caller was blocked."""

    def __init__(self, state: dict[str, torch.Tensor], shm: Path) -> None:
        from amzn_sagemaker_checkpointing.config.sagemaker_checkpoint_config import (  # noqa: PLC0415
            SageMakerCheckpointConfig,
        )

        self.state, self.step = state, 0
        self.config = SageMakerCheckpointConfig(namespace="bench-mtc", world_size=1)
        self.manager = CheckpointManager(
            job="bench-mtc", rank=0, world_size=1, memory_every=1, shm_dir=shm / "ours"
        )
        self.uploads: list[float] = []

    def mtc(self) -> float:
        from amzn_sagemaker_checkpointing.checkpointing.filesystem.filesystem import (  # noqa: PLC0415
            SageMakerTieredStorageWriter,
        )
        from torch.distributed.checkpoint import async_save  # noqa: PLC0415

        self.step += 1
        writer = SageMakerTieredStorageWriter(checkpoint_config=self.config, step=self.step)
        started = time.perf_counter()
        future = async_save(state_dict=self.state, storage_writer=writer)
        blocked = time.perf_counter() - started
        future.result()
        self.uploads.append(time.perf_counter() - started)
        return blocked

    def ours(self) -> float:
        self.step += 1
        started = time.perf_counter()
        self.manager.save(self.step, self.state)
        blocked = time.perf_counter() - started
        self.manager.wait()
        return blocked


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench mtc")
    parser.add_argument("--quick", action="store_true", help="16 MB, 3 trials")
    parser.add_argument("--mb", type=int, default=None, help="state size (default 128, quick 16)")
    parser.add_argument("--trials", type=int, default=None)
    args = parser.parse_args(argv)
    mb = args.mb or (16 if args.quick else 128)
    trials = args.trials or (3 if args.quick else 7)
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="bench-mtc-") as tmp:
        shm = Path(tmp)
        server, url = start_server(shm)
        saved = {name: os.environ.get(name) for name in ("http_proxy", "no_proxy")}
        os.environ.update({"http_proxy": url, "no_proxy": ""})
        store = dist.FileStore(str(shm / "store"), 1)
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        try:
            arms = Arms(make_state(mb), shm)
            arms.mtc()  # warm-up: namespace, connection, first slots
            arms.ours()
            mtc_times, our_times = [], []
            for _ in range(trials):
                mtc_times.append(arms.mtc())
                our_times.append(arms.ours())
            arms.manager.close()
        finally:
            dist.destroy_process_group()
            for name, value in saved.items():
                os.environ.pop(name, None)
                if value is not None:
                    os.environ[name] = value
            server.terminate()
            server.wait(timeout=30)
    rows = [
        Row(f"mtc_save_stall_{mb}mb_vs_memory_tier", median(mtc_times), median(our_times), "s"),
        Row(f"mtc_save_total_{mb}mb", median(arms.uploads), None, "s"),
    ]
    write_results("mtc", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
