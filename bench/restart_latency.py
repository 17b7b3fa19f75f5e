"""Restart latency: trainguard's agent (cold and with hot spares) against plain torchrun.

One node, ``--nproc`` gloo DDP workers (`bench/workloads/crash_steps.py`). A fault is rank 1
calling ``os._exit(1)``; the restart latency is the time from that call to the first completed
training step of *every* rank after the restart, read from the workers' own timestamps.

- ``agent`` arms are driven only through the agent's HTTP API, as the controller does: poll
  ``/status`` until ``faulted``, ``/stop``, poll until ``ready``, ``/start`` with ``faultCount``
  + 1 and a fresh master port. ``hot`` adds ``--hot-spares``.
- ``torchrun`` is the baseline: ``torchrun --standalone`` relaunched after each failure (a fresh
  rendezvous port every time), with the agent's monitor interval (50 ms). Plain
  ``--max-restarts=N`` is not usable as a baseline here: its restarted gloo workers read the
  previous round's stale addresses from the reused store and fail to connect (DESIGN §2).

``worker_exit_detection_s`` is the agent's ``detected_at`` minus the worker's exit time (the
issue's budget is 200 ms). Results: ``bench/results/restart_latency.json``.

Run: ``python -m bench restart_latency [--faults N | --quick]`` (main's dispatcher) or
``python -m bench.restart_latency``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.arms import free_port
from bench.common import Row, write_results
from trainguard.agent.client import AgentClient
from trainguard.agent.protocol import AgentState, AgentStatus, StartRequest, StopRequest
from trainguard.errors import TrainguardError

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "workloads" / "crash_steps.py"
HOST = "127.0.0.1"
DETECTION_BUDGET_S = 0.2


def poll(what: str, probe: Callable[[], Any], timeout: float = 120.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
        except TrainguardError:
            value = None
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def first_steps(events: list[dict[str, Any]], attempt: int) -> dict[int, float]:
    return {
        e["rank"]: e["t"] for e in events if e["event"] == "first_step" and e["attempt"] == attempt
    }


def crash_time(events: list[dict[str, Any]], attempt: int) -> float | None:
    times = [e["t"] for e in events if e["event"] == "crash" and e["attempt"] == attempt]
    return times[0] if times else None


def latencies(events: list[dict[str, Any]], faults: int, nproc: int) -> list[float]:
    """Crash of attempt k -> slowest rank's first step of attempt k+1, for every fault."""
    found = []
    for attempt in range(faults):
        crashed, steps = crash_time(events, attempt), first_steps(events, attempt + 1)
        if crashed is not None and len(steps) == nproc:
            found.append(max(steps.values()) - crashed)
    return found


CRASH_AFTER = 160  # steps of 50 ms: a fault after ~8 s of training, once startup is over


def workload_args(out: Path, faults: int) -> list[str]:
    return [
        str(WORKLOAD),
        "--out",
        str(out),
        "--crashes",
        str(faults),
        "--crash-after",
        str(CRASH_AFTER),
    ]


def agent_arm(work: Path, *, faults: int, nproc: int, hot: bool) -> dict[str, list[float]]:
    """Drive one agent through ``faults`` crashes over HTTP; returns latencies and detections."""
    token, port = secrets.token_hex(16), free_port()
    events = work / f"events-{'hot' if hot else 'cold'}.jsonl"
    env = dict(os.environ) | {
        "TRAINGUARD_AGENT_TOKEN": token,
        "TRAINGUARD_AGENT_PORT": str(port),
        "TRAINGUARD_AGENT_HOST": HOST,
        "TRAINGUARD_LOG_DIR": str(work / "logs"),
        "LOGLEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "trainguard.agent", f"--nproc-per-node={nproc}", "--nnodes=1"]
    argv += ["--server-log-level", "warning"]
    argv += ["--hot-spares"] if hot else []
    with (work / "agent.out").open("ab") as output:
        agent = subprocess.Popen(
            argv + workload_args(events, faults), env=env, stdout=output, stderr=output
        )
    client = AgentClient(f"http://{HOST}:{port}", token=token, timeout=10)
    detections: list[float] = []
    try:
        poll("agent", client.status, every=0.05)
        if hot:
            time.sleep(10)  # let the first spares finish importing torch, as on a long-lived pod
        for attempt in range(faults + 1):
            start(client, attempt)
            if attempt == faults:
                break
            status: AgentStatus = poll("fault", lambda: _in(client, AgentState.FAULTED))
            crashed = poll("crash record", lambda a=attempt: crash_time(read_events(events), a))
            if status.trainguard and status.trainguard.detected_at:
                detections.append(status.trainguard.detected_at - crashed)
            client.stop(StopRequest(restart_mode="process_level_restart"))
            poll("ready", lambda: _in(client, AgentState.READY))
            print(f"  {'hot ' if hot else 'cold'} fault {attempt + 1}/{faults}", flush=True)
        poll("completion", lambda: _in(client, AgentState.COMPLETED), timeout=300)
        client.shutdown()
        agent.wait(timeout=120)
    finally:
        client.close()
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    return {"latency": latencies(read_events(events), faults, nproc), "detection": detections}


def start(client: AgentClient, attempt: int) -> None:
    client.start(
        StartRequest.model_validate(
            {
                "rank": 0,
                "nnodes": 1,
                "faultCount": attempt,
                "master_addr": HOST,
                "master_port": free_port(),
            }
        )
    )


def _in(client: AgentClient, state: AgentState) -> AgentStatus | None:
    status = client.status()
    return status if status.status is state else None


def torchrun_arm(work: Path, *, faults: int, nproc: int) -> dict[str, list[float]]:
    """torchrun relaunched after every failure (``--standalone`` = a fresh rendezvous port each
    time); the same workload, fault count and monitor interval as the agent."""
    events = work / "events-torchrun.jsonl"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1"]
    torchrun += [f"--nproc-per-node={nproc}", "--max-restarts=0", "--monitor-interval=0.05"]
    with (work / "torchrun.out").open("ab") as output:
        for attempt in range(faults + 1):
            env = dict(os.environ) | {"BENCH_ATTEMPT": str(attempt)}
            done = subprocess.run(
                torchrun + workload_args(events, faults),
                env=env,
                stdout=output,
                stderr=output,
                timeout=300,
                check=False,
            )
            if (done.returncode == 0) != (attempt == faults):
                raise RuntimeError(f"torchrun attempt {attempt} exited with {done.returncode}")
            print(f"  torchrun fault {attempt + 1}/{faults}", flush=True)
    return {"latency": latencies(read_events(events), faults, nproc), "detection": []}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench restart_latency", description=__doc__)
    parser.add_argument("--faults", type=int, default=10, help="faults per arm (>= 10 for results)")
    parser.add_argument("--quick", action="store_true", help="3 faults per arm (a smoke run)")
    parser.add_argument("--nproc", type=int, default=2, help="workers on the node")
    parser.add_argument("--arms", default="torchrun,cold,hot", help="comma-separated subset")
    args = parser.parse_args(argv)
    if args.quick:
        args.faults = min(args.faults, 3)
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp:
        work = Path(os.environ.get("BENCH_WORKDIR") or tmp)
        runs = {}
        for name, arm in (
            ("torchrun", lambda: torchrun_arm(work, faults=args.faults, nproc=args.nproc)),
            ("cold", lambda: agent_arm(work, faults=args.faults, nproc=args.nproc, hot=False)),
            ("hot", lambda: agent_arm(work, faults=args.faults, nproc=args.nproc, hot=True)),
        ):
            if name not in args.arms.split(","):
                continue
            print(f"arm {name}...", flush=True)
            runs[name] = arm()
    median = {name: statistics.median(run["latency"] or [math.nan]) for name, run in runs.items()}
    median = {name: median.get(name, math.nan) for name in ("torchrun", "cold", "hot")}
    detection = statistics.median(
        [d for run in runs.values() for d in run["detection"]] or [math.nan]
    )
    recovered = {
        name: len(runs[name]["latency"]) / args.faults if name in runs else math.nan
        for name in ("torchrun", "cold", "hot")
    }
    rows = [
        Row("restart_latency_s", median["cold"], median["torchrun"], "s"),
        Row("restart_latency_hot_spares_s", median["hot"], median["torchrun"], "s"),
        Row("restart_latency_hot_spares_vs_cold_agent_s", median["hot"], median["cold"], "s"),
        Row("first_attempt_recoveries", recovered["cold"], recovered["torchrun"], "fraction"),
        Row("worker_exit_detection_s", detection, None, "s"),
    ]
    samples = {name: len(run["latency"]) for name, run in runs.items()}
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus; samples {samples}"
    )
    write_results("restart_latency", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
