"""End-to-end: the real CLI, controller, agents and training script on a private local cluster.

Each test gets its own ``$TRAINGUARD_HOME`` and a copy of the quickstart (shortened to fewer
steps so a run takes tens of seconds), runs ``trainguard`` as a subprocess exactly as a user
would, and tears every process and shared-memory file down afterwards, even when it fails.
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
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart"
SCRIPTS = REPO / "tests" / "integration" / "scripts"
TRAINGUARD = [str(Path(sys.executable).parent / "trainguard")]
LOSS = re.compile(r"\[rank (\d+)\] Step: (\d+) Loss: ([0-9.eE+-]+)")


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
        steps: int = 150,
        script: str = "train.py",
        args: tuple[str, ...] = (),
        **overrides: Any,
    ) -> Path:
        """The quickstart manifest running ``script --steps=STEPS ARGS``.

        ``overrides`` patch ``spec.runPolicy``.
        """
        shutil.copy(QUICKSTART / "train.py", self.work / "train.py")
        shutil.copy(SCRIPTS / "ddp_steps.py", self.work / "ddp_steps.py")
        document = yaml.safe_load((QUICKSTART / "job.yaml").read_text())
        container = document["spec"]["replicaSpecs"][0]["template"]["spec"]["containers"][0]
        command = [a for a in container["command"] if not a.startswith("--steps")]
        at = command.index("train.py")
        command[at : at + 1] = [script, f"--steps={steps}", *args]
        container["command"] = command
        document["spec"]["runPolicy"].update(overrides)
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

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*TRAINGUARD, *args],
            env=self.env,
            cwd=self.work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

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


def _pods_of(home: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["environ"]):
        try:
            if (process.info["environ"] or {}).get("TRAINGUARD_HOME") == str(home):
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = Cluster(home, work)
    try:
        yield env
    finally:
        env.cli("cluster", "down", timeout=60)
        for process in _pods_of(home):
            with contextlib.suppress(psutil.Error):
                process.kill()
