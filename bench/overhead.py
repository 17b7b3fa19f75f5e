"""What running under trainguard costs a healthy job: step time and memory, vs bare torchrun.

Ours has everything on: controller, agent with log tee, five log rules, the memory tier every 10
steps and the durable tier every 50. The baseline is bare ``torchrun`` with no checkpointing at
all. Trials run in a seeded random order, same model and seed; the step time is the *mean*
interval between consecutive completed steps (so every save step counts), unpadded and padded
(``--pad``: each step lasts at least that long, the save after the padding, as in goodput).
``overhead_rss_mb`` is the peak RSS of everything but the workers (controller, pod shim,
agent and its zygote for ours; the torchrun agent for the baseline), so it excludes checkpoint
buffers; ``overhead_uss_mb`` the same processes' unique (unshared) memory, without the torch
library pages the workers map too; ``overhead_cpu_share`` their CPU seconds per wall second
while the workers train (the cores they take from the workers; boot excluded);
``overhead_{rss,uss}_mb_<part>`` split them into agent, zygote, parked spares
(when on), controller (``trainguard run``) and pod shim; ``..._per_node`` adds the per-node
parts (all but the controller) against torchrun's agent.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.arms import Events, Trial, run_torchrun, run_trainguard
from bench.common import Row, write_results

RULES = [
    {"name": "JobStart", "logPattern": ".*Loss:.*", "expectedStartCutOffInSeconds": 240},
    {
        "name": "JobHangingDetection",
        "logPattern": ".*Loss:.*",
        "expectedRecurringFrequencyInSeconds": 60,
    },
    {
        "name": "LossSpike",
        "logPattern": r".*Loss: ([0-9.eE+-]+).*",
        "metricThreshold": 1e6,
        "operator": "gt",
        "metricEvaluationDataPoints": 3,
    },
    {
        "name": "LossNaN",
        "logPattern": r".*Loss: (nan|inf).*",
        "metricThreshold": 0,
        "operator": "gt",
        "metricEvaluationDataPoints": 1,
    },
    {
        "name": "StepSeen",
        "logPattern": r".*Step: (\d+).*",
        "expectedRecurringFrequencyInSeconds": 60,
    },
]


def step_intervals(events: Events) -> list[float]:
    """Seconds between consecutive completed steps of each rank (the first step excluded)."""
    intervals = []
    for rank in events.ranks:
        times = [r["t"] for r in events.of("step") if r["rank"] == rank]
        intervals += [b - a for a, b in itertools.pairwise(times[1:])]
    return intervals


PARTS = ("agent", "zygote", "spare", "controller", "shim", "mtc")
PER_NODE = ("agent", "zygote", "spare", "shim", "mtc")  # the controller is per cluster


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench overhead")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--trials", type=int, default=None, help="trials per arm and variant")
    parser.add_argument("--params-mb", type=float, default=None)
    parser.add_argument("--pad", type=float, default=0.25, help="padded variant's step time")
    args = parser.parse_args(argv)
    trials = args.trials or (1 if args.quick else 2)
    params_mb = args.params_mb or (16.0 if args.quick else 50.0)
    variants = {"": (200 // trials, 0.0), "_padded": (max(20, 100 // trials), args.pad)}
    samples: dict[str, list[float]] = defaultdict(list)
    usage: dict[str, list[dict[str, float]]] = {"torchrun": [], "trainguard": []}
    order = random.Random(18)
    with tempfile.TemporaryDirectory(prefix="trainguard-overhead-") as tmp:
        for index in range(trials):
            runs = [(arm, v) for arm in ("torchrun", "trainguard") for v in variants]
            for arm, variant in order.sample(runs, len(runs)):
                steps, pad = variants[variant]
                trial_dir = Path(tmp) / f"{arm}{variant}-{index}"
                trial_dir.mkdir()
                trial = run_arm(arm, trial_dir, steps=steps, params_mb=params_mb, step_time=pad)
                events = Events(trial.events)
                if events.last_step() < steps:
                    print(f"{arm}{variant}: reached step {events.last_step()} of {steps}")
                    return 1
                samples[f"{arm}{variant}"].append(statistics.fmean(step_intervals(events)))
                stepped = [r["t"] for r in events.of("step")]
                usage[arm].append(trial.overhead.figures(stepped[0], stepped[-1]))
                print(f"{arm}{variant} trial {index}: {trial.wall_s:.1f} s", flush=True)
    rows = [
        Row.of(f"overhead_step_time{v}", samples[f"trainguard{v}"], samples[f"torchrun{v}"], "s")
        for v in variants
    ]
    write_results("overhead", rows + usage_rows(usage))
    return 0


def usage_rows(usage: dict[str, list[dict[str, float]]]) -> list[Row]:
    """Memory and CPU of everything but the workers, in total, per node and per part."""

    def of(arm: str, key: str) -> list[float]:
        return [trial.get(key, 0.0) for trial in usage[arm]]

    def per_node(arm: str, kind: str) -> list[float]:
        return [sum(t.get(f"{kind}_mb_{p}", 0.0) for p in PER_NODE) for t in usage[arm]]

    rows = [
        Row.of("overhead_rss_mb", of("trainguard", "rss_mb"), of("torchrun", "rss_mb"), "MiB"),
        Row.of("overhead_uss_mb", of("trainguard", "uss_mb"), of("torchrun", "uss_mb"), "MiB"),
        Row.of(
            "overhead_cpu_share",
            of("trainguard", "cpu_share"),
            of("torchrun", "cpu_share"),
            "cores",
        ),
        Row.of(
            "overhead_rss_mb_per_node",
            per_node("trainguard", "rss"),
            of("torchrun", "rss_mb_agent"),
            "MiB",
        ),
        Row.of(
            "overhead_uss_mb_per_node",
            per_node("trainguard", "uss"),
            of("torchrun", "uss_mb_agent"),
            "MiB",
        ),
    ]
    for part in PARTS:
        for key, unit in (
            (f"rss_mb_{part}", "MiB"),
            (f"uss_mb_{part}", "MiB"),
            (f"cpu_share_{part}", "cores"),
        ):
            base = of("torchrun", key) if part == "agent" else None
            rows.append(Row.of(f"overhead_{key}", of("trainguard", key), base, unit))
    return rows


def run_arm(arm: str, trial_dir: Path, *, steps: int, params_mb: float, step_time: float) -> Trial:
    common = {"steps": steps, "params_mb": params_mb, "timeout": 900.0, "step_time": step_time}
    if arm == "torchrun":
        return run_torchrun(trial_dir, nproc=2, restarts=0, fresh_port=False, ckpt="none", **common)
    return run_trainguard(
        trial_dir,
        nproc=2,
        hot_spares=False,
        rules=RULES,
        ckpt="trainguard",
        memory_every=10,
        durable_every=50,
        **common,
    )
