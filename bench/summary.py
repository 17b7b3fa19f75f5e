"""Every row of every benchmark's latest results in one Markdown table, for RESULTS.md.

``python -m bench all`` ends with it; ``python -m bench summary [--quick]`` rewrites it from the
JSON files. Each row shows the median, ``n`` and min-max of ours and of the baseline, and each
benchmark's load average when it finished, so a number from a busy machine says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from bench.common import QUICK_ENV, RESULTS


def cell(value: Any, spread: dict[str, Any] | None) -> str:
    if value is None:
        return "-"
    text = f"{value:.4g}"
    if spread:
        text += f" (n={spread['n']}, {spread['low']:.4g}-{spread['high']:.4g})"
    return text


def section(name: str, document: dict[str, Any]) -> list[str]:
    load = " / ".join(f"{x:.2f}" for x in document.get("load_average", []))
    lines = [f"### {name} (load average 1/5/15 min at the end: {load})", ""]
    lines += ["| metric | ours | baseline | ratio | unit |", "|---|---:|---:|---:|---|"]
    for row in document.get("rows", []):
        ratio = "-" if row.get("ratio") is None else f"{row['ratio']:.3f}"
        ours = cell(row["ours"], row.get("ours_spread"))
        base = cell(row.get("baseline"), row.get("baseline_spread"))
        lines.append(f"| `{row['metric']}` | {ours} | {base} | {ratio} | {row['unit']} |")
    return [*lines, ""]


def summary(directory: Path) -> str:
    lines = [f"## Results in {directory.name}/", ""]
    for path in sorted(directory.glob("*.json")):
        document = json.loads(path.read_text())
        if isinstance(document, dict):  # older result files are bare lists without spreads
            lines += section(path.stem, document)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench summary", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="summarise results/quick/")
    args = parser.parse_args(argv)
    quick = args.quick or bool(os.environ.get(QUICK_ENV))
    directory = RESULTS / "quick" if quick else RESULTS
    text = summary(directory)
    (directory / "SUMMARY.md").write_text(text + "\n")
    print(text)
    print(f"wrote {directory / 'SUMMARY.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
