"""How fast trainguard notices and remediates faults, and that it raises no false alarms.

One job (1 node x 2 workers with hot spares, a spare node) gets a series of faults injected by the
controller (``--fault``): SIGKILL of a worker, SIGSTOP of a worker (caught by a 5 s recurring-log
rule), and the node labelled ``UnschedulablePendingReboot``. Times come from the controller's
events (float timestamps in the store): injection -> the fault's warning event (detection) and
injection -> the job Running again (node remediation). A second, healthy job soaks with memory and
durable checkpoints (pauses) and a slow first step; any log-rule fault is a false alarm. torchrun
has no hang detector or node remediation, so these rows have no baseline.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from bench.arms import run_trainguard
from bench.common import Row, write_results
from trainguard.store.records import EventRecord

RULE_WINDOW_S = 5
HANG_RULE = {
    "name": "JobHangingDetection",
    "logPattern": r".*Step: \d+ Loss:.*",
    "expectedRecurringFrequencyInSeconds": RULE_WINDOW_S,
    # the drain of the last durable save at the end is silent and may outlast the window
    "stopPattern": r".*Training finished.*",
}
START_RULE = {"name": "JobStart", "logPattern": ".*Loss:.*", "expectedStartCutOffInSeconds": 120}
SPACING_S = 12  # a hang is caught within 6.5 s and hot spares restart in ~1 s


def fault_plan(kills: int, hangs: int, nodes: int) -> list[str]:
    """Faults ``SPACING_S`` apart (seconds after first Running): kills, hangs, then nodes."""
    plan, at = [], SPACING_S // 2
    kinds = ["kill-worker:rank=1,"] * kills + ["hang-worker:rank=1,"] * hangs
    kinds += ["node-unhealthy:"] * nodes
    for kind in kinds:
        plan.append(f"{kind}after={at}")
        at += SPACING_S
    return plan


def latencies(events: list[EventRecord], kind: str, until_reason: str) -> list[float]:
    """For each injection of ``kind``: seconds until the next event whose reason starts so."""
    found = []
    for index, event in enumerate(events):
        if event.reason != "FaultInjected" or not event.message.startswith(kind):
            continue
        later = [e for e in events[index + 1 :] if e.reason.startswith(until_reason)]
        if later:
            found.append(later[0].time - event.time)
    return found


def node_remediations(events: list[EventRecord]) -> list[float]:
    """Node labelled unhealthy -> the job's next ``Running`` event (pods on a spare, started)."""
    found = []
    for index, event in enumerate(events):
        if event.reason == "FaultInjected" and event.message.startswith("node-unhealthy"):
            running = [e for e in events[index + 1 :] if e.reason == "Running"]
            if running:
                found.append(running[0].time - event.time)
    return found


def faults_run(directory: Path, samples: int, nodes: int) -> list[Row]:
    plan = fault_plan(samples, samples, nodes)
    trial = run_trainguard(
        directory,
        nproc=2,
        hot_spares=True,
        timeout=len(plan) * SPACING_S * 4 + 180,
        nodes=nodes + 2,
        spares=1,
        rules=[START_RULE, HANG_RULE],
        inject=plan,
        ckpt="none",
        steps=100000,
        params_mb=4,
        step_time=0.2,
        max_wall=len(plan) * SPACING_S + 60,
    )
    events: list[EventRecord] = trial.extra.get("events") or []
    kills = latencies(events, "kill-worker", "WorkerCrash")
    hangs = latencies(events, "hang-worker", "LogStateHanging_")
    remediations = node_remediations(events)
    print(f"exit detections {kills}\nhang detections {hangs}\nnode remediations {remediations}")
    return [
        Row.of("worker_exit_detection_s", kills, None, "s"),
        Row.of("hang_detection_s", hangs, None, "s"),
        Row("hang_detection_window_s", RULE_WINDOW_S, None, "s"),
        Row.of("node_fault_remediation_s", remediations, None, "s"),
    ]


def soak_run(directory: Path, seconds: float) -> list[Row]:
    trial = run_trainguard(
        directory,
        nproc=2,
        hot_spares=False,
        timeout=seconds * 3 + 180,
        rules=[START_RULE, HANG_RULE],
        ckpt="trainguard",
        memory_every=10,
        durable_every=50,
        steps=100000,
        params_mb=64,
        step_time=0.2,
        max_wall=seconds,
        slow_first_step=8,
    )
    events: list[Any] = trial.extra.get("events") or []
    alarms = [e for e in events if e.reason.startswith("LogState")]
    for alarm in alarms:
        print("false alarm:", alarm.reason, alarm.message)
    return [Row("false_alarms", len(alarms), None, "count")]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench detection")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    samples, nodes = (3, 1) if args.quick else (10, 2)
    with tempfile.TemporaryDirectory(prefix="trainguard-detect-") as tmp:
        (Path(tmp) / "faults").mkdir()
        (Path(tmp) / "soak").mkdir()
        rows = faults_run(Path(tmp) / "faults", samples, nodes)
        rows += soak_run(Path(tmp) / "soak", 60 if args.quick else 180)
    write_results("detection", rows)
    return 0
