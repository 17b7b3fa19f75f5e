"""Real ``trainguard controller`` processes (issue 12, items 1 and 3).

A job whose pods ``subprocess.Popen`` refuses fails alone while another job completes; a
controller SIGSTOPped past its lease and resumed after a successor took over exits without
launching anything; ``cluster down`` stops every controller process, stopped ones included;
``cluster up`` reports a controller that died at start instead of "controller running".
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from trainguard import constants as c
from trainguard.controller.state import JobPhase, JobState
from trainguard.store.sqlite import SqliteStore

pytestmark = pytest.mark.slow
SCRIPTS = Path(__file__).parent / "scripts"
LEASE = 2.0


class Local:
    """A private ``$TRAINGUARD_HOME`` with helpers to run the CLI and read the store."""

    def __init__(self, tmp_path: Path) -> None:
        self.home, self.work = tmp_path / "home", tmp_path / "work"
        self.work.mkdir()
        self.env = {**os.environ, c.ENV_HOME: str(self.home)}
        self.started: list[subprocess.Popen[bytes]] = []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "trainguard", *args],
            env=self.env, cwd=self.work, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip

    def controller(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.work / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "trainguard", "controller", "--lease-seconds", str(LEASE),
                 *args],
                env=self.env, cwd=self.work, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.started.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.work / f"{name}.log").read_text(errors="replace")

    def store(self) -> SqliteStore:
        return SqliteStore(self.home / "state.db")

    def leader(self) -> tuple[int, int] | None:
        store = self.store()
        try:
            lease = store.current_lease()
            return (lease.pid, lease.renewals) if lease else None
        finally:
            store.close()

    def wait_leading(self, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
        seen: list[int] = []

        def leads() -> bool:
            assert process.poll() is None, f"controller {process.pid} exited"
            lease = self.leader()
            if lease is None or lease[0] != process.pid:
                return False
            seen.append(lease[1])
            return seen[-1] > seen[0]

        wait_for(leads, timeout)

    def job_file(self, name: str, steps: int) -> Path:
        shutil.copy(SCRIPTS / "agent_worker.py", self.work / "agent_worker.py")
        document = {
            "apiVersion": c.API_VERSION,
            "kind": c.KIND,
            "metadata": {"name": name},
            "spec": {
                "nprocPerNode": "1",
                "replicaSpecs": [
                    {
                        "name": "pods",
                        "replicas": 1,
                        "template": {"spec": {"containers": [{
                            "name": "pytorch",
                            "command": ["python", "agent_worker.py", f"--steps={steps}",
                                        "--step-time=0.05"],
                        }]}},
                    }
                ],
            },
        }  # fmt: skip
        path = self.work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(document))
        return path

    def phase(self, name: str) -> JobPhase | None:
        store = self.store()
        try:
            record = store.find_job("default", name)
            return JobState.model_validate(record.state).phase if record else None
        finally:
            store.close()

    def shims(self) -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["environ", "cmdline"]):
            with contextlib.suppress(psutil.Error):
                env = process.info["environ"] or {}
                cmdline = process.info["cmdline"] or []
                if (
                    env.get(c.ENV_HOME) == str(self.home)
                    and "trainguard.backends.local.shim" in cmdline
                ):
                    found.append(process)
        return found


def wait_for(condition: Callable[[], Any], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    env = Local(tmp_path)
    try:
        yield env
    finally:
        for process in env.started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)
        env.cli("cluster", "down", "--timeout", "20")
        for process in env.started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


def test_a_job_popen_refuses_fails_alone_and_the_controller_runs_on(local: Local) -> None:
    controller = local.controller("controller", "--nodes", "3")
    local.wait_leading(controller)
    bad = local.job_file("bad", steps=0)
    assert local.cli("job", "create", "-f", str(bad)).returncode == 0
    with sqlite3.connect(local.home / "state.db") as db:  # below validation, as a store holds it
        (raw,) = db.execute("SELECT manifest FROM jobs WHERE name='bad'").fetchone()
        manifest = json.loads(raw)
        container = manifest["spec"]["replicaSpecs"][0]["template"]["spec"]["containers"][0]
        container["env"] = [{"name": "TOKEN", "value": "a\x00b"}]
        db.execute("UPDATE jobs SET manifest=? WHERE name='bad'", (json.dumps(manifest),))
    good = local.job_file("good", steps=3)
    assert local.cli("job", "create", "-f", str(good)).returncode == 0
    wait_for(lambda: local.phase("good") is JobPhase.COMPLETED, 120)
    assert local.phase("bad") is JobPhase.FAILED
    assert controller.poll() is None, local.log("controller")
    store = local.store()
    events = [e for e in store.list_events(name="bad") if e.reason == c.REASON_RECONCILE_ERROR]
    assert events and events[0].type == "Warning" and "default/bad" in events[0].message
    assert "Traceback" in local.log("controller")


def test_a_stalled_controller_resumed_after_a_takeover_exits_without_acting(
    local: Local,
) -> None:
    first = local.controller("first", "--nodes", "3")
    local.wait_leading(first)
    os.kill(first.pid, signal.SIGSTOP)
    job = local.job_file("train", steps=0)
    assert local.cli("job", "create", "-f", str(job)).returncode == 0
    second = local.controller("second")
    local.wait_leading(second)
    wait_for(lambda: local.phase("train") is JobPhase.RUNNING, 120)
    shims = {p.pid for p in local.shims()}
    os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=30) == 1, local.log("first")
    assert "lost its lease" in local.log("first")
    assert second.poll() is None and local.leader() is not None
    assert local.leader()[0] == second.pid  # type: ignore[index]
    assert {p.pid for p in local.shims()} == shims, "the stalled controller launched pods"
    store = local.store()
    assert len(store.list_pods("default", "train")) == 1


def test_cluster_down_stops_every_controller_even_a_stopped_one(local: Local) -> None:
    first = local.controller("first", "--nodes", "2")
    local.wait_leading(first)
    os.kill(first.pid, signal.SIGSTOP)
    second = local.controller("second")
    local.wait_leading(second)
    done = local.cli("cluster", "down", "--timeout", "20")
    assert done.returncode == 0, done.stderr
    assert "2 controller(s) stopped" in done.stdout
    assert first.wait(timeout=30) is not None and second.wait(timeout=30) is not None


def test_cluster_up_reports_a_controller_that_died_at_start(local: Local) -> None:
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = local.cli("cluster", "up", "--nodes", "2", "--metrics-port", str(port))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "controller running" not in done.stdout
    assert "exited at start" in done.stderr
    assert "Address already in use" in done.stderr or "address" in done.stderr.lower()
