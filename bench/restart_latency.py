"""Restart latency: trainguard's agent (default, cold start, hot spares) against torchrun.

One node, ``--nproc`` gloo DDP workers (`bench/workloads/crash_steps.py`). A fault is rank 1
calling ``os._exit(1)``; the restart latency is the time from that call to the first completed
training step of *every* rank after the restart, read from the workers' own timestamps.

- agent arms are driven only through the agent's HTTP API, as the controller does: poll
  ``/status`` until ``faulted``, ``/stop``, poll until ``ready``, ``/start`` with ``faultCount``
  + 1 and a fresh master port. ``default`` has no flags (workers forked by the agent's zygote),
  ``cold`` adds ``--cold-start`` (a new interpreter per worker), ``hot`` adds ``--hot-spares``.
- ``torchrun`` is the baseline, what users run: one ``torchrun --max-restarts=N`` with c10d
  rendezvous on a fixed endpoint and the agent's monitor interval (50 ms); torchrun restarts
  the workers itself. Its workers rendezvous gloo on a fresh port per restart (``--fresh-port``):
  with the store torchrun reuses, restarted gloo workers fail ``connectFullMesh`` against the
  previous round's addresses (`tests/integration/test_torchrun_stale_store.py` reproduces it).
- ``torchrun_relaunch`` is informational: ``torchrun --standalone --max-restarts=0`` relaunched
  by this script after each failure (a fresh rendezvous port every time).

Arms run in rounds (``--rounds``); each round runs every arm once, in a seeded random order, so
a slow period of the machine hits every arm alike. Rows carry n and min-max of all samples.

``worker_exit_detection_s`` is the agent's ``detected_at`` minus the worker's exit time (the
issue's budget is 200 ms). Results: ``bench/results/restart_latency.json``.

Run: ``python -m bench restart_latency [--faults N | --quick]`` (main's dispatcher) or
``python -m bench.restart_latency``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
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


def workload_args(out: Path, faults: int, *extra: str) -> list[str]:
    return [
        str(WORKLOAD),
        "--out",
        str(out),
        "--crashes",
        str(faults),
        "--crash-after",
        str(CRASH_AFTER),
        *extra,
    ]


AGENT_FLAGS = {"default": (), "cold": ("--cold-start",), "hot": ("--hot-spares",)}


def agent_arm(work: Path, *, faults: int, nproc: int, mode: str) -> dict[str, list[float]]:
    """Drive one agent through ``faults`` crashes over HTTP; returns latencies and detections."""
    token, port = secrets.token_hex(16), free_port()
    hot = mode == "hot"
    events = work / f"events-{mode}.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "TRAINGUARD_COLD_START"} | {
        "TRAINGUARD_AGENT_TOKEN": token,
        "TRAINGUARD_AGENT_PORT": str(port),
        "TRAINGUARD_AGENT_HOST": HOST,
        "TRAINGUARD_LOG_DIR": str(work / "logs"),
        "LOGLEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "trainguard.agent", f"--nproc-per-node={nproc}", "--nnodes=1"]
    argv += ["--server-log-level", "warning"]
    argv += AGENT_FLAGS[mode]
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
            print(f"  {mode} fault {attempt + 1}/{faults}", flush=True)
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
    """One ``torchrun --max-restarts=faults`` (c10d rendezvous): torchrun restarts the workers."""
    events = work / "events-torchrun.jsonl"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1"]
    torchrun += ["--rdzv-backend=c10d", f"--rdzv-endpoint={HOST}:{free_port()}"]
    torchrun += [f"--nproc-per-node={nproc}", f"--max-restarts={faults}", "--monitor-interval=0.05"]
    with (work / "torchrun.out").open("ab") as output:
        done = subprocess.run(
            torchrun + workload_args(events, faults, f"--fresh-port={free_port()}"),
            stdout=output,
            stderr=output,
            timeout=300 + 60 * faults,
            check=False,
        )
    print(f"  torchrun --max-restarts={faults}: exit {done.returncode}", flush=True)
    return {"latency": latencies(read_events(events), faults, nproc), "detection": []}


def relaunch_arm(work: Path, *, faults: int, nproc: int) -> dict[str, list[float]]:
    """torchrun relaunched after every failure (``--standalone`` = a fresh rendezvous port each
    time); the same workload, fault count and monitor interval as the agent."""
    events = work / "events-relaunch.jsonl"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1"]
    torchrun += [f"--nproc-per-node={nproc}", "--max-restarts=0", "--monitor-interval=0.05"]
    with (work / "torchrun.out").open("ab") as output:
        for attempt in range(faults + 1):
            env = {k: v for k, v in os.environ.items() if k != "TRAINGUARD_COLD_START"} | {
                "BENCH_ATTEMPT": str(attempt)
            }
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
            print(f"  relaunch fault {attempt + 1}/{faults}", flush=True)
    return {"latency": latencies(read_events(events), faults, nproc), "detection": []}


ARMS = ("torchrun", "relaunch", "default", "cold", "hot")


def run_arm(name: str, work: Path, *, faults: int, nproc: int) -> dict[str, list[float]]:
    """One arm in its own directory (each round gets fresh event files)."""
    work.mkdir(parents=True, exist_ok=True)
    if name == "torchrun":
        return torchrun_arm(work, faults=faults, nproc=nproc)
    if name == "relaunch":
        return relaunch_arm(work, faults=faults, nproc=nproc)
    return agent_arm(work, faults=faults, nproc=nproc, mode=name)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench restart_latency", description=__doc__)
    parser.add_argument("--faults", type=int, default=3, help="faults per arm and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of all arms (random order)")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 faults (a smoke run)")
    parser.add_argument("--nproc", type=int, default=2, help="workers on the node")
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset")
    parser.add_argument("--seed", type=int, default=18, help="seed of the arm order")
    args = parser.parse_args(argv)
    if args.quick:
        args.faults, args.rounds = min(args.faults, 3), 1
    chosen = [name for name in ARMS if name in args.arms.split(",")]
    order = random.Random(args.seed)
    runs: dict[str, dict[str, list[float]]] = {n: {"latency": [], "detection": []} for n in ARMS}
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp:
        work = Path(os.environ.get("BENCH_WORKDIR") or tmp)
        for round_ in range(args.rounds):
            arms = order.sample(chosen, len(chosen))
            print(f"round {round_ + 1}/{args.rounds}: {', '.join(arms)}", flush=True)
            for name in arms:
                run = run_arm(name, work / f"{name}-{round_}", faults=args.faults, nproc=args.nproc)
                for key, values in run.items():
                    runs[name][key] += values
    lat = {name: run["latency"] for name, run in runs.items()}
    detection = [d for run in runs.values() for d in run["detection"]]
    total = args.faults * args.rounds
    recovered = {name: [len(lat[name]) / total] if name in chosen else [] for name in ARMS}
    rows = [
        Row.of("restart_latency_s", lat["default"], lat["torchrun"], "s"),
        Row.of("restart_latency_hot_spares_s", lat["hot"], lat["torchrun"], "s"),
        Row.of("restart_latency_cold_start_s", lat["cold"], lat["torchrun"], "s"),
        Row.of("restart_latency_vs_torchrun_relaunch_s", lat["default"], lat["relaunch"], "s"),
        Row.of("restart_latency_hot_spares_vs_default_s", lat["hot"], lat["default"], "s"),
        Row.of("first_attempt_recoveries", recovered["default"], recovered["torchrun"], "fraction"),
        Row.of("worker_exit_detection_s", detection, None, "s"),
    ]
    samples = {name: len(values) for name, values in lat.items()}
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus; samples {samples}"
    )
    write_results("restart_latency", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
