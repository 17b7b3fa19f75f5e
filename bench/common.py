"""Rows, tables and result files shared by every benchmark.

A row compares trainguard ("ours") with the baseline a user gets for free today in the same
run; ``ratio`` is ours / baseline, so below 1 is better for times and above 1 for goodput.
"""

from __future__ import annotations

import json
import math
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
class Spread:
    """What a median hides: how many samples, and the smallest and largest of them."""

    n: int
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        finite = [v for v in values if math.isfinite(v)]
        return cls(len(finite), min(finite), max(finite)) if finite else None

    def text(self) -> str:
        return f"n={self.n} {self.low:.4g}-{self.high:.4g}"


@dataclass(frozen=True)
class Row:
    """One measured metric, ours against the baseline (None when there is no baseline).

    ``ours`` and ``baseline`` are medians; ``ours_spread`` / ``baseline_spread`` say over how
    many samples and their min-max, so one noisy sample cannot pass for a result.
    """

    metric: str
    ours: float
    baseline: float | None
    unit: str
    ours_spread: Spread | None = None
    baseline_spread: Spread | None = None

    @classmethod
    def of(
        cls, metric: str, ours: Sequence[float], baseline: Sequence[float] | None, unit: str
    ) -> Row:
        """A row of medians from raw samples (``baseline=None``: no baseline)."""
        return cls(
            metric,
            median(ours),
            None if baseline is None else median(baseline),
            unit,
            Spread.of(ours),
            None if baseline is None else Spread.of(baseline),
        )

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
    document = {
        "load_average": load_average(),
        "machine": machine(),
        "rows": [row.as_json() for row in rows],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(table(rows))
    print("load average (1, 5, 15 min):", " ".join(f"{x:.2f}" for x in load_average()))
    print(f"wrote {path}")
    return path


def table(rows: Sequence[Row]) -> str:
    """A plain-text table of rows."""
    lines = [f"{'metric':<40} {'ours':>12} {'baseline':>12} {'ratio':>8}  unit  spreads"]
    for row in rows:
        baseline = "-" if row.baseline is None else f"{row.baseline:12.4g}"
        ratio = "-" if row.ratio is None else f"{row.ratio:8.3f}"
        spreads = " / ".join(s.text() for s in (row.ours_spread, row.baseline_spread) if s)
        lines.append(
            f"{row.metric:<40} {row.ours:12.4g} {baseline:>12} {ratio:>8}  {row.unit}  {spreads}"
        )
    return "\n".join(lines)


def load_average() -> tuple[float, float, float]:
    """The machine's 1, 5 and 15 minute load averages: numbers from a busy machine say so."""
    return os.getloadavg()


def machine() -> str:
    """A one-line description of this machine for RESULTS.md."""
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
