"""The scenario `Driver` for the local backend: the ``trainguard`` CLI on a private cluster.

The controller runs as ``trainguard cluster up`` starts it (a daemon holding the store's lease);
killing it is SIGKILL to the lease holder's pid, restarting it is ``cluster up`` again. Pods are
read from the store (``job describe -o json`` shows status and events, not pods).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import psutil
import yaml

from tests.localcluster import Cluster, wait_for
from tests.scenarios.driver import JOB, Driver, JobView
from trainguard.store.sqlite import SqliteStore

NODES = 3
SHM_ROOT = Path("/dev/shm")


class LocalDriver(Driver):
    name = "local"

    def __init__(self, cluster: Cluster) -> None:
        super().__init__()
        self.cluster, self.work = cluster, cluster.work

    def _cli(self, *args: str) -> str:
        done = self.cluster.cli(*args)
        assert done.returncode == 0, f"trainguard {' '.join(args)}: {done.stderr[-3000:]}"
        return done.stdout

    def start(self) -> None:
        self._cli("cluster", "up", "--nodes", str(NODES))

    def submit(self, manifest: dict[str, Any]) -> None:
        path = self.work / "job.yaml"
        path.write_text(yaml.safe_dump(manifest))
        self._cli("job", "create", "-f", str(path))

    def read(self) -> JobView:
        job = json.loads(self._cli("job", "describe", JOB, "-o", "json"))
        events = [(e["type"], e["reason"], e["message"]) for e in job["events"]]
        return JobView(dict(job["status"]), events, self.pods())

    def pods(self) -> dict[str, str]:
        store = SqliteStore(self.cluster.home / "state.db")
        try:
            return {p.name: p.node for p in store.list_pods("default", JOB)}
        finally:
            store.close()

    def inject(self, fault: str) -> None:
        self._cli("fault", "inject", JOB, fault, "--no-wait")

    def label_node(self, node: str, key: str, value: str) -> None:
        self._cli("node", "label", node, f"{key}={value}")

    def set_suspend(self, suspend: bool) -> None:
        self._cli("job", "suspend" if suspend else "resume", JOB)

    def kill_controller(self) -> None:
        pid = self.cluster.controller_pid()
        assert pid is not None, "no controller holds the lease"
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")

    def delete_job(self) -> None:
        self._cli("job", "delete", JOB)

    def job_exists(self) -> bool:
        return self.cluster.cli("job", "describe", JOB, "-o", "json").returncode == 0

    def memory_files(self) -> list[Path]:
        digest = hashlib.sha1(str(self.cluster.home.resolve()).encode()).hexdigest()[:8]
        root = SHM_ROOT / f"trainguard-{digest}"
        return [p for p in root.glob(f"*/default.{JOB}.*/**/*") if p.is_file()]

    def log_lines(self) -> list[str]:
        lines: list[str] = []
        for path in (self.cluster.home / "pods").rglob("*"):
            if path.is_file() and JOB in path.parts and path.suffix in {".log", ".txt", ""}:
                lines.extend(path.read_text(errors="replace").splitlines())
        return lines
