"""Log-rule evaluation time on issue 12's inputs: the RuleEngine (RE2, lines split at ``\\r`` and
cut) vs Python's backtracking `re`, what the engine ran before.

Inputs: ``(a+)+$`` on ``a``*29 + ``!`` (30 characters) and ``.*Loss:.*`` on one 150 kB tqdm line
of ``\\r`` redraws. The `re` arm runs once per input in a child process under a time limit (it
takes tens of seconds and holds the GIL); the engine arm is the median of many feeds.
Run: ``python -m bench log_rules [--quick]`` (``--quick``: `re` limited to 10 s).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import Row, median, write_results
from trainguard.policy.log_rules import RuleEngine, parse_rules

REDOS = ("(a+)+$", "a" * 29 + "!")
_REDRAW = "\r 45%|####5     | 450/1000 [00:10<00:12, 44.12it/s]"
TQDM = (".*Loss:.*", (_REDRAW * (150_000 // len(_REDRAW) + 1))[:150_000])
INPUTS = {"redos_30_chars": REDOS, "tqdm_150kb_line": TQDM}
_CHILD = (
    "import re, sys, time; c = re.compile(sys.argv[1]); line = sys.stdin.buffer.read().decode()\n"
    "t = time.perf_counter(); c.search(line); print(time.perf_counter() - t)"
)


def engine_seconds(pattern: str, line: str, trials: int) -> float:
    """Median seconds of one `RuleEngine.feed` of ``line`` against ``pattern``."""
    rules = parse_rules([{"name": "R", "logPattern": pattern, "faultOnMatch": True}], source="b")
    engine = RuleEngine(rules, [0], now=0.0)
    samples = []
    for _ in range(trials):
        started = time.perf_counter()
        engine.feed(0, line, 1.0)
        samples.append(time.perf_counter() - started)
    return median(samples)


def re_seconds(pattern: str, line: str, limit: float) -> float:
    """Seconds one Python `re` search takes (``limit`` when it did not finish within it)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, pattern],
            input=line.encode(),
            capture_output=True,
            timeout=limit,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return limit
    return float(done.stdout)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench log_rules")
    parser.add_argument("--quick", action="store_true", help="`re` arm limited to 10 s")
    args = parser.parse_args(argv)
    limit = 10.0 if args.quick else 180.0
    rows = []
    for name, (pattern, line) in INPUTS.items():
        ours = engine_seconds(pattern, line, trials=200)
        base = re_seconds(pattern, line, limit)
        rows.append(Row(f"log_rule_eval_{name}", ours, base, "s"))
        print(f"{name}: engine {ours * 1e3:.3f} ms, re {base:.2f} s (limit {limit:g} s)")
    write_results("log_rules", rows)
    return 0
