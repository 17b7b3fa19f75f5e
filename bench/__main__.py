"""Run ``python -m bench <name> [args]`` (``bench.<name>.main``); ``all`` runs every one, then
``summary`` (every row with n, median, min-max and the load average in one Markdown table)."""

from __future__ import annotations

import importlib
import os
import sys
import time

from bench.common import QUICK_ENV

ALL = (
    "footprint",
    "controller_scale",
    "checkpoint",
    "checksum",
    "mtc",
    "log_rules",
    "restart_latency",
    "detection",
    "overhead",
    "goodput",
    "elastic",
)


def run(name: str, argv: list[str]) -> int:
    """Run one benchmark module's ``main``."""
    module = importlib.import_module(f"bench.{name}")
    code: int = module.main(argv)
    return code


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(f"usage: python -m bench {{all|summary|{'|'.join(ALL)}}} [--quick] [options]")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if "--quick" in rest:
        os.environ[QUICK_ENV] = "1"
    if name != "all":
        return run(name, rest)
    failures = []
    begun = time.monotonic()
    for each in ALL:
        started = time.monotonic()
        print(f"=== bench {each} ===", flush=True)
        try:
            code = run(each, rest)
        except ModuleNotFoundError as exc:
            print(f"bench {each}: not available ({exc})")
            code = 1
        print(
            f"=== bench {each}: exit {code} in {time.monotonic() - started:.0f} s ===", flush=True
        )
        if code:
            failures.append(each)
    run("summary", [])
    print(f"=== bench all: {(time.monotonic() - begun) / 60:.1f} min ===", flush=True)
    if failures:
        print("failed:", ", ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
