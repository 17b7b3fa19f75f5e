"""What running under trainguard costs a healthy job: step time and memory, vs bare torchrun.

Ours has everything on: controller, agent with log tee, five log rules, the memory tier every 10
steps and the durable tier every 50. The baseline is bare ``torchrun`` with no checkpointing at
all. Arms alternate (A/B/A/B), same model and seed; the step time is the median interval between
consecutive completed steps (so checkpoint stalls count). ``overhead_rss_mb`` is the peak RSS of
everything but the workers (controller, pod shim and agent for ours; the torchrun agent for the
baseline), so it excludes checkpoint buffers; ``overhead_uss_mb`` the same processes' unique
(unshared) memory, without the torch library pages the workers map too; ``overhead_cpu_share``
their CPU seconds per wall second while the workers train (the cores they take from the workers;
boot excluded); ``overhead_rss_mb_<part>`` splits the RSS into agent, controller (``trainguard
run``) and pod shim.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench overhead")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--trials", type=int, default=None, help="trials per arm")
    parser.add_argument("--params-mb", type=float, default=None)
    args = parser.parse_args(argv)
    trials = args.trials or (1 if args.quick else 2)
    params_mb = args.params_mb or (16.0 if args.quick else 50.0)
    steps = 200 // trials
    samples: dict[str, list[float]] = {"torchrun": [], "trainguard": []}
    usage: dict[str, list[dict[str, float]]] = {"torchrun": [], "trainguard": []}
    with tempfile.TemporaryDirectory(prefix="trainguard-overhead-") as tmp:
        for index in range(trials):
            for arm in ("torchrun", "trainguard"):
                trial_dir = Path(tmp) / f"{arm}-{index}"
                trial_dir.mkdir()
                trial = run_arm(arm, trial_dir, steps=steps, params_mb=params_mb)
                events = Events(trial.events)
                if events.last_step() < steps:
                    print(f"{arm}: reached step {events.last_step()} of {steps}")
                    return 1
                samples[arm] += step_intervals(events)
                stepped = [r["t"] for r in events.of("step")]
                usage[arm].append(trial.overhead.figures(stepped[0], stepped[-1]))
                print(f"{arm} trial {index}: {trial.wall_s:.1f} s", flush=True)
    ours, base = statistics.median(samples["trainguard"]), statistics.median(samples["torchrun"])
    rows = [
        Row("overhead_step_time", ours, base, "s"),
    ]
    keys = [("rss_mb", "MiB"), ("uss_mb", "MiB"), ("cpu_share", "cores")]
    keys += [(f"rss_mb_{part}", "MiB") for part in ("agent", "controller", "shim")]
    for key, unit in keys:
        worst = {arm: max(t.get(key, 0.0) for t in trials) for arm, trials in usage.items()}
        rows.append(Row(f"overhead_{key}", worst["trainguard"], worst["torchrun"] or None, unit))
    write_results("overhead", rows)
    return 0


def run_arm(arm: str, trial_dir: Path, *, steps: int, params_mb: float) -> Trial:
    common = {"steps": steps, "params_mb": params_mb, "timeout": 900.0}
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
