"""Rows, tables and result files shared by every benchmark.

A row compares trainguard ("ours") with the baseline a user gets for free today in the same
run; ``ratio`` is ours / baseline, so below 1 is better for times and above 1 for goodput.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_ENV = "TRAINGUARD_BENCH_QUICK"
"""Set by ``python -m bench ... --quick``: smoke-sized figures go to ``results/quick/``."""


@dataclass(frozen=True)
class Row:
    """One measured metric, ours against the baseline (None when there is no baseline)."""

    metric: str
    ours: float
    baseline: float | None
    unit: str

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.ours / self.baseline

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "ratio": self.ratio}


def median(values: Sequence[float]) -> float:
    """Median, or NaN for no values (so a missing measurement is visible, never zero)."""
    return statistics.median(values) if values else float("nan")


def write_results(name: str, rows: Sequence[Row]) -> Path:
    """Write ``bench/results/<name>.json`` (``results/quick/`` for ``--quick`` runs), print."""
    directory = RESULTS / "quick" if os.environ.get(QUICK_ENV) else RESULTS
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps([row.as_json() for row in rows], indent=2) + "\n")
    print(table(rows))
    print(f"wrote {path}")
    return path


def table(rows: Sequence[Row]) -> str:
    """A plain-text table of rows."""
    lines = [f"{'metric':<40} {'ours':>12} {'baseline':>12} {'ratio':>8}  unit"]
    for row in rows:
        baseline = "-" if row.baseline is None else f"{row.baseline:12.4g}"
        ratio = "-" if row.ratio is None else f"{row.ratio:8.3f}"
        lines.append(f"{row.metric:<40} {row.ours:12.4g} {baseline:>12} {ratio:>8}  {row.unit}")
    return "\n".join(lines)


def machine() -> str:
    """A one-line description of this machine for RESULTS.md."""
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
