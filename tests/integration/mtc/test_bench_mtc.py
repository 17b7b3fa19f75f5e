"""The MTC save-stall benchmark runs end to end at a tiny size and writes well-formed rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_quick_mtc_benchmark_writes_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import common, mtc

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setenv("http_proxy", "")  # restored after the test, whatever the bench sets
    assert mtc.main(["--mb", "4", "--trials", "1"]) == 0
    document = json.loads((tmp_path / "mtc.json").read_text())  # rows + load average (issue 18)
    rows = {row["metric"]: row for row in document["rows"]}
    stall = rows["mtc_save_stall_4mb_vs_memory_tier"]
    assert stall["ours"] > 0 and stall["baseline"] > 0
    assert stall["ratio"] == pytest.approx(stall["ours"] / stall["baseline"])
    assert rows["mtc_save_total_4mb"]["ours"] >= stall["ours"]
