"""The two arms every training benchmark runs, and what their event logs say.

* ``torchrun`` (the baseline): ``torchrun --max-restarts`` with ``torch.save`` checkpoints;
  ``fresh_port=True`` gives each restart a fresh rendezvous port (the fix a careful user
  applies), ``False`` is torchrun's default store (reported as an informational row).
* ``trainguard``: ``trainguard run`` on a private local cluster (controller + agent +
  checkpoint library), optionally with the agent's hot spares.

Both run `bench/worker.py` with the same model, seed and fault schedule; `Events` reads the
JSONL it wrote and derives latencies, goodput and the correctness gate.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from trainguard.store.sqlite import SqliteStore

BENCH = Path(__file__).resolve().parent
WORKER = BENCH / "worker.py"
BIN = Path(sys.executable).parent
LAUNCHERS = ("torchrun", "hyperpodrun", "trainguard")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OverheadSampler:
    """Peak RSS and USS (MiB) and CPU seconds of a process tree's non-worker processes.

    RSS counts shared pages (torch's libraries, mapped by workers too) in full; USS counts only
    the pages a process alone holds, what the machine would get back without it.
    """

    def __init__(self) -> None:
        self.peak_rss = self.peak_uss = 0.0
        self.cpu: dict[int, float] = {}  # pid -> CPU seconds at its latest sample
        self.role_rss: dict[str, float] = {}
        self.role_uss: dict[str, float] = {}
        self.cpu_series: list[tuple[float, float]] = []  # (wall time, CPU seconds so far)
        self.pid_role: dict[int, str] = {}
        self.role_series: list[tuple[float, dict[str, float]]] = []  # per part, as above

    def sample(self, pid: int) -> None:
        try:
            root = psutil.Process(pid)
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        rss = uss = 0
        roles: dict[str, float] = {}
        unique: dict[str, float] = {}
        for process in family:
            try:
                cmdline = titled(process.cmdline())
                if is_worker(cmdline):
                    continue
                memory = process.memory_full_info()
                times = process.cpu_times()
            except psutil.Error:
                continue
            rss, uss = rss + memory.rss, uss + memory.uss
            self.cpu[process.pid] = times.user + times.system
            part = role(cmdline)
            self.pid_role[process.pid] = part
            roles[part] = roles.get(part, 0.0) + memory.rss / 2**20
            unique[part] = unique.get(part, 0.0) + memory.uss / 2**20
        for name, mib in roles.items():
            self.role_rss[name] = max(self.role_rss.get(name, 0.0), mib)
        for name, mib in unique.items():
            self.role_uss[name] = max(self.role_uss.get(name, 0.0), mib)
        self.cpu_series.append((time.time(), sum(self.cpu.values())))
        by_role: dict[str, float] = {}
        for each, seconds in self.cpu.items():
            part = self.pid_role[each]
            by_role[part] = by_role.get(part, 0.0) + seconds
        self.role_series.append((time.time(), by_role))
        self.peak_rss = max(self.peak_rss, rss / 2**20)
        self.peak_uss = max(self.peak_uss, uss / 2**20)

    def figures(self, start: float, end: float) -> dict[str, float]:
        """Peak memory (MiB, also per part) and the CPU share between two wall times (the
        training window: CPU seconds per wall second, boot excluded; NaN with < 2 samples)."""
        inside = [(t, cpu) for t, cpu in self.cpu_series if start <= t <= end]
        span = inside[-1][0] - inside[0][0] if len(inside) >= 2 else 0.0
        total = (inside[-1][1] - inside[0][1]) / span if span > 0 else float("nan")
        share: dict[str, float] = {}
        roles = [(t, cpu) for t, cpu in self.role_series if start <= t <= end]
        if len(roles) >= 2 and roles[-1][0] > roles[0][0]:
            span_roles = roles[-1][0] - roles[0][0]
            first, last = roles[0][1], roles[-1][1]
            for name, cpu in last.items():
                share[name] = (cpu - first.get(name, 0.0)) / span_roles
        parts = {f"cpu_share_{name}": value for name, value in share.items()}
        parts |= {f"rss_mb_{name}": mib for name, mib in self.role_rss.items()}
        parts |= {f"uss_mb_{name}": mib for name, mib in self.role_uss.items()}
        return {"rss_mb": self.peak_rss, "uss_mb": self.peak_uss, "cpu_share": total} | parts


def titled(cmdline: list[str]) -> list[str]:
    """The arguments of a process that set its title (workers forked by the zygote, hot spares
    that took a job): psutil returns the title as one string followed by empty strings."""
    if len(cmdline) > 1 and " " in cmdline[0] and not any(cmdline[1:]):
        return cmdline[0].split()
    return cmdline


def role(cmdline: list[str]) -> str:
    """What a non-worker process is: the pod ``shim``, the agent's ``zygote``, a parked hot
    ``spare``, an ``agent`` (hyperpodrun or torchrun's), a node's ``mtc`` checkpoint server
    (``trainguard run`` starts one per node by default), the ``controller`` (``trainguard run``
    hosts it) or ``other``."""
    head = " ".join(cmdline[:4])
    if "trainguard checkpoint" in head:
        return "mtc"
    if "trainguard.agent.zygote" in head:
        return "zygote"
    if "trainguard.agent.spare_worker" in head:
        return "spare"
    if "shim" in head:
        return "shim"
    if "hyperpodrun" in head or "torchrun" in head or "trainguard.agent" in head:
        return "agent"
    return "controller" if "trainguard" in head else "other"


def is_worker(cmdline: list[str]) -> bool:
    """A training worker runs worker.py itself (launchers only pass it on as an argument)."""
    launcher = any(name in arg for arg in cmdline[:3] for name in LAUNCHERS)
    return not launcher and any(arg.endswith("worker.py") for arg in cmdline[:4])


@dataclass
class Trial:
    """One run of one arm: its settings, wall time and event directory."""

    arm: str
    events: Path
    wall_s: float = 0.0
    exit_code: int = 0
    started: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    overhead: OverheadSampler = field(default_factory=OverheadSampler)


def worker_args(
    trial_dir: Path, *, steps: int, params_mb: float, ckpt: str, **kw: Any
) -> list[str]:
    """The worker's command line; fault times and ``--max-wall`` count from now (``--epoch``)."""
    args = [
        f"--epoch={time.time():.3f}",
        f"--steps={steps}",
        f"--params-mb={params_mb}",
        f"--ckpt={ckpt}",
        f"--ckpt-dir={trial_dir / 'ckpt'}",
        f"--events={trial_dir / 'events'}",
    ]
    for key, value in kw.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not None and value is not False:
            args.append(f"{flag}={value}")
    return args


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_torchrun(
    trial_dir: Path, *, nproc: int, restarts: int, fresh_port: bool, timeout: float, **kw: Any
) -> Trial:
    """The baseline arm: one torchrun with ``nproc`` workers on this machine."""
    trial = Trial("torchrun", trial_dir / "events")
    extra = {"fresh_port": free_port() if fresh_port else None}
    command = [
        str(BIN / "torchrun"),
        f"--nproc-per-node={nproc}",
        f"--max-restarts={restarts}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{free_port()}",
        str(WORKER),
        *worker_args(trial_dir, **kw, **extra),
    ]
    _run(trial, command, timeout=timeout, cwd=trial_dir)
    return trial


def job_manifest(
    trial_dir: Path,
    *,
    nproc: int,
    hot_spares: bool,
    rules: Sequence[dict[str, Any]],
    spares: int = 0,
    **kw: Any,
) -> Path:
    """A one-node HyperPodPyTorchJob running the worker under ``hyperpodrun``."""
    command = ["hyperpodrun", f"--nproc-per-node={nproc}", "--nnodes=1"]
    if hot_spares:
        command.append("--hot-spares")
    container = {"name": "bench", "command": [*command, str(WORKER), *worker_args(trial_dir, **kw)]}
    document = {
        "apiVersion": "sagemaker.amazonaws.com/v1",
        "kind": "HyperPodPyTorchJob",
        "metadata": {"name": "bench"},
        "spec": {
            "nprocPerNode": str(nproc),
            "replicaSpecs": [
                {
                    "name": "pods",
                    "replicas": 1,
                    "spares": spares,
                    "template": {"spec": {"containers": [container]}},
                }
            ],
            "runPolicy": {
                "jobMaxRetryCount": 1000,
                "restartPolicy": {
                    "numRestartBeforeFullJobRestart": 1000,
                    "evalPeriodSeconds": 3600,
                    "maxFullJobRestarts": 1,
                },
                "logMonitoringConfiguration": list(rules),
            },
        },
    }
    path = trial_dir / "job.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def run_trainguard(
    trial_dir: Path,
    *,
    nproc: int,
    hot_spares: bool,
    timeout: float,
    nodes: int = 2,
    spares: int = 0,
    rules: Sequence[dict[str, Any]] = (),
    inject: Sequence[str] = (),
    **kw: Any,
) -> Trial:
    """Our arm: ``trainguard run`` on a private local cluster."""
    trial = Trial("trainguard-hot" if hot_spares else "trainguard", trial_dir / "events")
    manifest = job_manifest(
        trial_dir, nproc=nproc, hot_spares=hot_spares, rules=rules, spares=spares, **kw
    )
    command = [str(BIN / "trainguard"), "run", str(manifest), f"--nodes={nodes}", "-o", "json"]
    for fault in inject:  # controller-injected faults (`--fault`), not the worker's schedule
        command += ["--fault", fault]
    env = {"TRAINGUARD_HOME": str(trial_dir / "home")}
    try:
        output = _run(trial, command, timeout=timeout, cwd=trial_dir, env=env)
        trial.extra["job"] = json.loads(output) if output.strip() else None
        store = SqliteStore(trial_dir / "home" / "state.db")
        trial.extra["events"] = store.list_events(kind="Job")
        store.close()
    finally:
        subprocess.run(
            [str(BIN / "trainguard"), "cluster", "down"],
            env={**environment(), **env},
            capture_output=True,
            timeout=120,
            check=False,
        )
    return trial


def _run(
    trial: Trial,
    command: list[str],
    *,
    timeout: float,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> str:
    """Run ``command``; sample the memory and CPU of everything but the workers (the overhead)."""
    trial.started = time.time()
    with tempfile.TemporaryFile("w+") as log, tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env={**environment(), **(env or {})}, stdout=out, stderr=log
        )
        try:
            while process.poll() is None:
                if time.time() - trial.started > timeout:
                    raise subprocess.TimeoutExpired(command, timeout)
                trial.overhead.sample(process.pid)
                time.sleep(0.5)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        log.seek(0)
        out.seek(0)
        log_text, stdout = log.read(), out.read()
    (cwd / f"{trial.arm}.stderr").write_text(log_text)
    trial.wall_s, trial.exit_code = time.time() - trial.started, process.returncode
    if process.returncode == 2:
        raise RuntimeError(f"{command[0]} rejected its input: {log_text[-2000:]}")
    return stdout


class Events:
    """The JSON lines every rank of one trial wrote."""

    def __init__(self, directory: Path) -> None:
        self.records: list[dict[str, Any]] = []
        for path in sorted(directory.glob("rank*.jsonl")):
            with path.open() as f:
                self.records += [json.loads(line) for line in f if line.strip()]
        self.records.sort(key=lambda r: r["t"])
        self.ranks = sorted({r["rank"] for r in self.records})

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == kind]

    def recoveries(self) -> list[float]:
        """Seconds from each ``die`` to the first step after it that every rank completed."""
        latencies = []
        for death in self.of("die"):
            after = [r for r in self.of("step") if r["t"] > death["t"]]
            firsts = []
            for rank in self.ranks:
                steps = [r["t"] for r in after if r["rank"] == rank]
                if steps:
                    firsts.append(steps[0])
            if len(firsts) == len(self.ranks):
                latencies.append(max(firsts) - death["t"])
        return latencies

    def all_stepped_at(self) -> float:
        """Wall time by which every rank had completed its first step (NaN if one never did)."""
        firsts = [
            min((r["t"] for r in self.of("step") if r["rank"] == k), default=0.0)
            for k in self.ranks
        ]
        return max(firsts) if firsts and min(firsts) else float("nan")

    def healthy_step_s(self) -> float:
        """Median duration of steps (the step time without faults)."""
        seconds = sorted(r["seconds"] for r in self.of("step"))
        return seconds[len(seconds) // 2] if seconds else float("nan")

    def steps_redone(self) -> int:
        """Step completions beyond the first one of each (rank, step)."""
        seen: set[tuple[int, int]] = set()
        redone = 0
        for record in self.of("step"):
            key = (record["rank"], record["step"])
            redone += key in seen
            seen.add(key)
        return redone

    def last_step(self) -> int:
        steps = [r["step"] for r in self.of("step")]
        return max(steps, default=0)

    def gate_failures(self) -> list[str]:
        """Resumes whose restored state differs from what that rank saved at that step."""
        saved = {(r["rank"], r["step"]): r["digest"] for r in self.of("saved") if r["digest"]}
        failures = []
        for resume in self.of("resume"):
            if resume["step"] is None or resume["digest"] is None:
                continue
            expected = saved.get((resume["rank"], resume["step"]))
            if expected != resume["digest"]:
                failures.append(
                    f"rank {resume['rank']} step {resume['step']}: "
                    f"restored {resume['digest']}, saved {expected}"
                )
        return failures
