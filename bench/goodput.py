"""Goodput under faults: a worker is killed about every 30 s, on one seeded schedule for all arms.

Arms: ``torchrun --max-restarts`` (c10d; its workers rendezvous gloo on a fresh port per
restart, see `bench.restart_latency`) + ``torch.save`` every 10 steps (the baseline), and
``trainguard run`` with default settings (workers forked by the agent's zygote, overlapped
memory snapshots every 2 steps, durable every 50), and with ``--hot-spares``. Each trial of
each arm runs in a seeded random order per round (``--trials`` rounds, >= 3 for results).

goodput = committed steps x the reference step time (the padded step time, the same for every
arm) / wall time from launch to exit. The lost time and its parts (`bench.accounting`) are
reported per arm, the goal being ours <= 0.35x torchrun's lost time. A fault-free run of the
same seed gives the final state every arm must end with; `bench.accounting.gate_failures`
fails the benchmark on any wrong resume.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from bench.accounting import PARTS, final_digests, gate_failures, lost_time, redone_per_rank
from bench.arms import Events, Trial, run_torchrun, run_trainguard
from bench.common import Row, median, write_results

# Three rounds of three arms of 90 s of steps, two faults each (about 18 min of wall time with
# boot and the fault-free reference), so that `python -m bench all` fits in about 45 min.
FULL_DURATION_S = 90.0
ARMS = ("torchrun", "trainguard", "trainguard-hot")
STEP_TIME_S = 0.5


def schedule(seed: int, *, duration: float, every: float, ranks: int) -> list[list[float]]:
    """[[seconds after launch, rank], ...]: one fault about every ``every`` seconds."""
    rng = random.Random(seed)
    faults, at = [], every
    while at < duration - every / 2:
        faults.append([round(at + rng.uniform(-every / 4, every / 4), 1), rng.randrange(ranks)])
        at += every
    return faults


def run_arm(arm: str, trial_dir: Path, *, nproc: int, fault_count: int, **common: Any) -> Trial:
    """The baseline saves with torch.save every 10 steps (each save stalls the loop for the
    whole write); ours snapshots to memory every 2 steps, overlapped, durable every 50."""
    timeout = common["steps"] * common["step_time"] * 4 + 180
    if arm == "torchrun":
        return run_torchrun(
            trial_dir,
            nproc=nproc,
            restarts=fault_count * 3,
            fresh_port=True,  # torchrun's reused store breaks restarted gloo workers
            timeout=timeout,
            ckpt="torch",
            save_every=10,
            **common,
        )
    return run_trainguard(
        trial_dir,
        nproc=nproc,
        hot_spares=arm.endswith("-hot"),
        timeout=timeout,
        ckpt="trainguard",
        memory_every=2,
        durable_every=50,
        **common,
    )


def reference_run(work: Path, *, steps: int, params_mb: float) -> dict[int, str]:
    """Final state checksums of a fault-free, unpadded, checkpoint-free run of the same seed."""
    trial_dir = work / "reference"
    trial_dir.mkdir()
    trial = run_torchrun(
        trial_dir,
        nproc=2,
        restarts=0,
        fresh_port=False,
        timeout=steps * 5 + 180,
        ckpt="none",
        steps=steps,
        params_mb=params_mb,
        verify=True,
    )
    digests = final_digests(Events(trial.events))
    if len(digests) != 2:
        raise RuntimeError(f"the fault-free reference run gave no final state ({trial_dir})")
    return digests


def measure(trial: Trial, events: Events, *, steps: int) -> dict[str, float]:
    """One trial's figures."""
    lost = lost_time(trial, events, steps=steps, reference=STEP_TIME_S)
    committed = min(events.last_step(), steps)
    stalls = [r.get("stall", 0.0) for r in events.of("step") if r.get("stall", 0.0) > 0]
    redone = redone_per_rank(events)
    return {
        "goodput": committed * STEP_TIME_S / trial.wall_s if trial.wall_s else float("nan"),
        "restart": median(events.recoveries()),
        "redone_per_fault": max(redone.values(), default=0) / max(1, len(events.of("die"))),
        "stall": median(stalls) if stalls else 0.0,
        **{f"lost_{part}": value for part, value in lost.items()},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench goodput")
    parser.add_argument("--quick", action="store_true", help="1 trial of 60 s per arm, 16 MB")
    parser.add_argument("--duration", type=float, default=None, help="seconds of steps per arm")
    parser.add_argument("--trials", type=int, default=None, help="rounds of all arms (>= 3)")
    parser.add_argument("--params-mb", type=float, default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    duration = args.duration or (60.0 if args.quick else FULL_DURATION_S)
    trials = args.trials or (1 if args.quick else 3)
    params_mb = args.params_mb or (16.0 if args.quick else 50.0)
    steps = int(duration / STEP_TIME_S)
    faults = schedule(args.seed, duration=duration, every=30.0, ranks=2)
    common = {
        "steps": steps,
        "params_mb": params_mb,
        "step_time": STEP_TIME_S,
        "faults": json.dumps(faults),
        "verify": True,
    }
    figures: dict[str, list[dict[str, float]]] = {arm: [] for arm in ARMS}
    failures: list[str] = []
    order = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="trainguard-goodput-") as tmp:
        reference = reference_run(Path(tmp), steps=steps, params_mb=params_mb)
        for trial_index in range(trials):
            for arm in order.sample(ARMS, len(ARMS)):
                trial_dir = Path(tmp) / f"{arm}-{trial_index}"
                trial_dir.mkdir()
                trial = run_arm(arm, trial_dir, nproc=2, fault_count=len(faults), **common)
                events = Events(trial.events)
                figures[arm].append(measure(trial, events, steps=steps))
                failures += [
                    f"{arm} trial {trial_index}: {f}" for f in gate_failures(events, reference)
                ]
                print(
                    f"{arm} trial {trial_index}: exit {trial.exit_code}, {trial.wall_s:.1f} s",
                    flush=True,
                )
    gate = Row("correctness_gate_failures", len(failures), None, "count")
    write_results("goodput", [*rows(figures), gate])
    for failure in failures:
        print("CORRECTNESS GATE:", failure)
    return 1 if failures else 0


def rows(figures: dict[str, list[dict[str, float]]]) -> list[Row]:
    """Rows of every figure, ours (default and hot spares) against torchrun, over the trials."""

    def samples(arm: str, key: str) -> list[float]:
        return [trial[key] for trial in figures[arm]]

    found = []
    for arm, suffix in (("trainguard", ""), ("trainguard-hot", "_hot_spares")):
        for key, metric, unit in (
            ("goodput", "goodput", "fraction"),
            ("lost_lost", "goodput_lost_time_s", "s"),
            *[(f"lost_{part}", f"goodput_lost_{part}_s", "s") for part in PARTS],
            ("restart", "goodput_restart_latency_s", "s"),
            ("redone_per_fault", "steps_redone_per_failure_per_rank", "steps"),
            ("stall", "goodput_in_loop_save_stall_s", "s"),
        ):
            name = (
                metric.replace("goodput", f"goodput{suffix}", 1)
                if "goodput" in metric
                else f"{metric}{suffix}"
            )
            found.append(Row.of(name, samples(arm, key), samples("torchrun", key), unit))
    return found
