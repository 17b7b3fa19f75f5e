"""A private local cluster driven through the real ``trainguard`` CLI, for end-to-end tests.

Shared by ``tests/e2e`` and the local half of ``tests/scenarios``: each test gets its own
``$TRAINGUARD_HOME`` and a copy of the quickstart (shortened to fewer steps so a run takes tens
of seconds), runs ``trainguard`` as a subprocess exactly as a user would, and tears every
process and shared-memory file down afterwards (`local_cluster`), even when it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

from trainguard.store.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "examples" / "quickstart"
SCRIPTS = REPO / "tests" / "integration" / "scripts"
TRAINGUARD = [str(Path(sys.executable).parent / "trainguard")]
# 200 steps of 0.1 s; faults are injected at step 25 (after the first memory checkpoints).
STEPS = 200
LOSS = re.compile(r"\[rank (\d+)\] Step: (\d+) Loss: ([0-9.eE+-]+)")


def quickstart_manifest(
    work: Path,
    *,
    steps: int = STEPS,
    script: str = "train.py",
    args: tuple[str, ...] = ("--step-time=0.1",),
    **overrides: Any,
) -> dict[str, Any]:
    """The quickstart job running ``script --steps=STEPS ARGS`` from ``work`` (the training
    scripts are copied there); ``overrides`` patch ``spec.runPolicy``."""
    shutil.copy(QUICKSTART / "train.py", work / "train.py")
    shutil.copy(SCRIPTS / "ddp_steps.py", work / "ddp_steps.py")
    document: dict[str, Any] = yaml.safe_load((QUICKSTART / "job.yaml").read_text())
    container = document["spec"]["replicaSpecs"][0]["template"]["spec"]["containers"][0]
    command = [a for a in container["command"] if not a.startswith("--steps")]
    at = command.index("train.py")
    command[at : at + 1] = [script, f"--steps={steps}", *args]
    container["command"] = command
    document["spec"]["runPolicy"].update(overrides)
    return document


@dataclass
class Run:
    """A finished ``trainguard run``: exit code, the job object, and stderr."""

    code: int
    job: dict[str, Any]
    stderr: str

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.job["status"])

    def reasons(self) -> list[str]:
        return [e["reason"] for e in self.job["events"]]

    def messages(self, reason: str) -> list[str]:
        return [e["message"] for e in self.job["events"] if e["reason"] == reason]

    def final_condition(self) -> str:
        return str(self.status["conditions"][-1]["type"])


class Cluster:
    """A private local cluster: a home directory, an environment and the CLI."""

    def __init__(self, home: Path, work: Path) -> None:
        self.home, self.work = home, work
        self.env = {**os.environ, "TRAINGUARD_HOME": str(home), "OMP_NUM_THREADS": "1"}

    def manifest(
        self,
        *,
        steps: int = STEPS,
        script: str = "train.py",
        args: tuple[str, ...] = ("--step-time=0.1",),
        **overrides: Any,
    ) -> Path:
        """The quickstart manifest running ``script --steps=STEPS ARGS``, written to the work
        directory (`quickstart_manifest`)."""
        document = quickstart_manifest(
            self.work, steps=steps, script=script, args=args, **overrides
        )
        path = self.work / "job.yaml"
        path.write_text(yaml.safe_dump(document))
        return path

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*TRAINGUARD, *args],
            check=False,
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def run(self, manifest: Path, *faults: str, timeout: float = 300) -> Run:
        """``trainguard run MANIFEST --fault ... -o json``."""
        args = ["run", str(manifest), "-o", "json"]
        for fault in faults:
            args += ["--fault", fault]
        done = self.cli(*args, timeout=timeout)
        assert done.stdout.strip(), f"no JSON on stdout; stderr:\n{done.stderr[-4000:]}"
        return Run(done.returncode, json.loads(done.stdout), done.stderr)

    def run_with_fault(self, manifest: Path, fault: str, *, at_step: int = 25) -> Run:
        """``trainguard run`` with ``fault`` injected (``fault inject``) once every rank has
        logged ``at_step`` — so the fault hits training, however long workers take to boot."""
        out, err = self.work / "run.stdout", self.work / "run.stderr"
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                [*TRAINGUARD, "run", str(manifest), "-o", "json"],
                env=self.env,
                cwd=self.work,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
            )
            try:
                wait_for(lambda: self.min_step() >= at_step or process.poll() is not None, 240)
                injected = self.cli("fault", "inject", "quickstart", fault)
                assert injected.returncode == 0, injected.stderr
                process.wait(timeout=300)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        text = out.read_text()
        assert text.strip(), f"no JSON on stdout; stderr:\n{err.read_text()[-4000:]}"
        return Run(process.returncode, json.loads(text), err.read_text())

    def controller_pid(self) -> int | None:
        """The pid holding the store's controller lease."""
        store = SqliteStore(self.home / "state.db")
        try:
            lease = store.current_lease()
            return lease.pid if lease else None
        finally:
            store.close()

    def min_step(self) -> int:
        """The step every one of the 4 ranks has logged (0 before all have started)."""
        losses = self.losses()
        return min((max(s) for s in losses.values()), default=0) if len(losses) == 4 else 0

    def losses(self, job: str = "quickstart") -> dict[int, dict[int, float]]:
        """Per global rank, step -> loss, from every log file the job's pods wrote."""
        found: dict[int, dict[int, float]] = {}
        for path in (self.home / "pods").rglob("*"):
            if path.is_file() and job in path.parts and path.suffix in {".log", ".txt", ""}:
                for match in LOSS.finditer(path.read_text(errors="replace")):
                    rank, step, loss = int(match[1]), int(match[2]), float(match[3])
                    found.setdefault(rank, {})[step] = loss
        return found


def wait_for(condition: Any, timeout: float = 60, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def processes_of(home: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["environ"]):
        try:
            if (process.info["environ"] or {}).get("TRAINGUARD_HOME") == str(home):
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


@contextlib.contextmanager
def local_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A `Cluster` under ``tmp_path``; on exit ``cluster down`` and SIGKILL whatever is left."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = Cluster(home, work)
    try:
        yield env
    finally:
        env.cli("cluster", "down", timeout=60)
        for process in processes_of(home):
            with contextlib.suppress(psutil.Error):
                process.kill()
