"""Checkpoint faults with real processes: SIGKILL mid-save, resharding across world sizes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from .conftest import TIMEOUT, Workers

pytestmark = pytest.mark.slow


def expected(out: Path, rank: int, step: int) -> dict[str, str]:
    data: dict[str, str] = json.loads((out / f"expected_{rank}_{step}.json").read_text())
    return data


def test_sigkill_mid_save_restores_previous_step(workers: Workers, tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/durable"
    (proc,) = workers.start(
        1, "hang-save", "--uri", uri, "--out", str(tmp_path), "--durable-every", "0"
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "COPYING", proc.stderr.read() if proc.stderr else line
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    (loaded,) = workers.load(1, uri)
    assert (loaded["step"], loaded["tier"]) == (1, "memory")
    assert loaded["digest"] == expected(tmp_path, 0, 1)


def test_two_ranks_save_and_resume_from_memory(workers: Workers, tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/durable"
    workers.run(2, "save", "--uri", uri, "--out", str(tmp_path), "--steps", "3")
    loaded = workers.load(2, uri)
    for rank, result in enumerate(loaded):
        assert (result["step"], result["tier"]) == (3, "memory")
        assert result["digest"] == expected(tmp_path, rank, 3)


def test_durable_step_loads_with_other_world_sizes(workers: Workers, tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/durable"
    workers.run(2, "save", "--uri", uri, "--out", str(tmp_path), "--steps", "2")
    for world in (1, 3):
        for result in workers.load(world, uri):
            assert (result["step"], result["tier"]) == (2, "durable")
            assert result["digest"] == expected(tmp_path, 0, 2)
