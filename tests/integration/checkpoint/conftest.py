"""Helpers for checkpoint integration tests: run worker processes, always clean them up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ports import free_port
from trainguard import constants as c

WORKER = Path(__file__).with_name("ckpt_worker.py")
TIMEOUT = 180


class Workers:
    """Starts ckpt_worker.py processes and kills whatever is left at the end."""

    def __init__(self, shm: Path) -> None:
        self.shm = shm
        self.procs: list[subprocess.Popen[str]] = []

    def env(self, rank: int, world: int, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != c.ENV_AGENT_SOCKET}
        env.update(
            {
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "WORLD_SIZE": str(world),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                "OMP_NUM_THREADS": "1",
                c.ENV_SHM_DIR: str(self.shm),
                c.ENV_JOB_NAME: "itest",
            }
        )
        env.pop(c.ENV_RESUME_STEP, None)
        return env

    def start(self, world: int, *args: str) -> list[subprocess.Popen[str]]:
        port = free_port()
        started = [
            subprocess.Popen(
                [sys.executable, str(WORKER), *args],
                env=self.env(rank, world, port),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for rank in range(world)
        ]
        self.procs.extend(started)
        return started

    def run(self, world: int, *args: str) -> list[str]:
        """Run ``world`` ranks to completion; return each rank's stdout."""
        outputs = []
        for proc in self.start(world, *args):
            out, err = proc.communicate(timeout=TIMEOUT)
            assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{err[-4000:]}"
            outputs.append(out)
        return outputs

    def load(self, world: int, uri: str, *extra: str, mode: str = "load") -> list[dict[str, Any]]:
        """Restore with ``world`` ranks; each rank's restored line (first JSON line)."""
        outs = self.run(world, mode, "--uri", uri, *extra)
        return [json.loads(out.strip().splitlines()[0]) for out in outs]

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture
def shm() -> Iterator[Path]:
    parent = "/dev/shm" if Path("/dev/shm").is_dir() else None
    root = Path(tempfile.mkdtemp(prefix="tg-itest-ckpt-", dir=parent))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def workers(shm: Path) -> Iterator[Workers]:
    made = Workers(shm)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def shm_root(shm: Path) -> Path:
    return shm
