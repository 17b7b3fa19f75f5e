"""The checkpoint benchmark runs end to end at its --quick size and writes well-formed rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXPECTED = {
    "save_stall_vs_memcpy",
    "save_stall_vs_memcpy_shm",
    "save_stall_vs_torch_save",
    "save_stall_vs_torch_save_shm",
    "save_stall_vs_dcp_save",
    "save_stall_vs_dcp_async_save",
    "save_stall_overlapped_vs_memcpy_shm",
    "restore_memory_vs_disk",
    "step_time_during_persist_vs_idle",
}


def test_quick_benchmark_writes_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import checkpoint, common

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(checkpoint, "QUICK_MB", 4)
    assert checkpoint.main(["--quick", "--trials", "2", "--name", "ckpt"]) == 0
    document = json.loads((tmp_path / "ckpt.json").read_text())
    assert len(document["load_average"]) == 3 and document["machine"]
    by_metric = {row["metric"]: row for row in document["rows"]}
    assert set(by_metric) >= EXPECTED
    fields = {"metric", "ours", "baseline", "ratio", "unit", "ours_spread", "baseline_spread"}
    for name in EXPECTED:
        row = by_metric[name]
        assert set(row) == fields
        assert row["ours"] > 0 and row["baseline"] > 0
        assert row["ratio"] == pytest.approx(row["ours"] / row["baseline"])
        for spread in (row["ours_spread"], row["baseline_spread"]):
            assert spread["n"] >= 2 and spread["low"] <= spread["high"]
