"""Where the non-worker memory goes: each import stage of our per-node processes, and torchrun's.

A fresh interpreter imports one more stage at a time (each stage includes the ones before it)
and reports its own RSS and USS; the difference between stages is what that stage costs. The
stages follow the agent's own import chain (``trainguard.agent.main``: torch through
``torch.distributed.elastic``, then FastAPI/uvicorn for the HTTP API, then the agent itself),
the zygote's preload, and torchrun's agent (``torch.distributed.run``) as the baseline. The
running processes' figures, with CPU per part while training, come from `bench.overhead`.

``python -m bench footprint [--quick]``; rows go to ``bench/results/footprint.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from bench.common import Row, write_results
from trainguard.agent.zygote import DEFAULT_PRELOAD as ZYGOTE_PRELOAD

PROBE = """
import importlib, json, sys, psutil
for name in sys.argv[1].split(",") if sys.argv[1] else []:
    importlib.import_module(name)
info = psutil.Process().memory_full_info()
print(json.dumps({"rss": info.rss / 2**20, "uss": info.uss / 2**20}))
"""

STAGES = {
    "python": [],
    "torch": ["torch"],
    "torch_elastic": [
        "torch",
        "torch.distributed.elastic.multiprocessing",
        "torch.distributed.run",
    ],
    "http_api": [
        "torch",
        "torch.distributed.elastic.multiprocessing",
        "torch.distributed.run",
        "fastapi",
        "uvicorn",
    ],
    "agent": ["trainguard.agent.main"],
    "zygote": list(ZYGOTE_PRELOAD),
    "shim": ["trainguard.backends.local.shim"],
    "torchrun_agent": ["torch.distributed.run"],
}


def probe(modules: list[str]) -> dict[str, float]:
    """RSS and USS (MiB) of a fresh interpreter after importing ``modules``."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(modules)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench footprint", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 sample per stage (else 3)")
    args = parser.parse_args(argv)
    samples = 1 if args.quick else 3
    rows = []
    for stage, modules in STAGES.items():
        figures = [probe(modules) for _ in range(samples)]
        rows.append(Row.of(f"import_rss_mb_{stage}", [f["rss"] for f in figures], None, "MiB"))
        rows.append(Row.of(f"import_uss_mb_{stage}", [f["uss"] for f in figures], None, "MiB"))
        print(f"{stage}: {figures[-1]}", flush=True)
    write_results("footprint", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
