"""Checkpoint faults with real processes: SIGKILL mid-save (resharding: `test_resize`)."""

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


def test_sigkill_mid_durable_save_leaves_a_temporary_the_restart_sweeps(
    workers: Workers, tmp_path: Path
) -> None:
    uri = f"file://{tmp_path}/durable"
    (proc,) = workers.start(1, "hang-durable", "--uri", uri, "--out", str(tmp_path))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "WRITING", proc.stderr.read() if proc.stderr else line
    temporary = tmp_path / "durable" / "itest" / ".tmp-step_2"
    written = sum(p.stat().st_size for p in temporary.rglob("*") if p.is_file())
    assert written > 100_000, "the killed save should leave its shard files behind"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT)
    assert temporary.is_dir(), "SIGKILL mid-save leaves the temporary (the original fault)"
    (loaded,) = workers.load(1, uri)  # a restart: constructing the manager sweeps
    assert not temporary.exists(), "the restart did not sweep the stale temporary"
    assert (tmp_path / "durable" / "itest" / "step_1" / "COMMITTED").is_file()
    assert loaded["step"] == 2 and loaded["tier"] == "memory"


def test_two_ranks_save_and_resume_from_memory(workers: Workers, tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/durable"
    workers.run(2, "save", "--ddp", "--uri", uri, "--out", str(tmp_path), "--steps", "3")
    loaded = workers.load(2, uri, "--ddp")
    for rank, result in enumerate(loaded):
        assert (result["step"], result["tier"]) == (3, "memory")
        assert result["digest"] == expected(tmp_path, rank, 3)
        record = (result["world_size"], result["saved_world_size"], result["reason"])
        assert record == (2, 2, None), "the size did not change: nothing to say"
