"""What a scenario does to a cluster, said once for every backend: the `Driver` interface.

A scenario (`test_scenarios`) submits the quickstart job, injects a fault or labels a node,
kills and restarts whatever runs the controller, deletes the job, and reads back the job's
status, Events and pods. Each backend does those things the way its users do: the local driver
through the ``trainguard`` CLI on a private local cluster (`tests.localcluster`), the
Kubernetes driver (`tests.scenarios.kube`) through the real ``kubectl`` and ``trainguard
operator`` against a cluster. So the assertions are the same for both and name only what a
user can see: HyperPod's status fields, its Event reasons, pod names and nodes.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.localcluster import quickstart_manifest

JOB = "quickstart"
LOSS = re.compile(r"\[rank (\d+)\] Step: (\d+) Loss: ([0-9.eE+-]+)")
RANKS = 4
FINAL = ("Completed", "Failed")


@dataclass
class JobView:
    """The job as a user reads it: status, Events (oldest first) and its live pods."""

    status: dict[str, Any]
    events: list[tuple[str, str, str]]
    """``(type, reason, message)``."""
    pods: dict[str, str] = field(default_factory=dict)
    """Live (not terminating) pod name -> node."""

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]

    def messages(self, reason: str) -> list[str]:
        return [message for _, why, message in self.events if why == reason]

    def final(self) -> str | None:
        """``Completed`` or ``Failed`` once the job ended, else None."""
        ended = [
            x["type"]
            for x in self.status.get("conditions") or []
            if x["type"] in FINAL and x["status"] == "True"
        ]
        return ended[-1] if ended else None


def losses(lines: Iterable[str]) -> dict[int, dict[int, float]]:
    """Per global rank, step -> loss, from training log lines."""
    found: dict[int, dict[int, float]] = {}
    for line in lines:
        for match in LOSS.finditer(line):
            found.setdefault(int(match[1]), {})[int(match[2])] = float(match[3])
    return found


def min_step(found: dict[int, dict[int, float]]) -> int:
    """The step every rank has logged (0 until all `RANKS` have)."""
    return min((max(s) for s in found.values()), default=0) if len(found) == RANKS else 0


class Driver(ABC):
    """One backend as the scenarios drive it (module docstring)."""

    name: str
    work: Path
    """The job's working directory (training scripts, durable checkpoints)."""

    def __init__(self) -> None:
        self.seen_pods: set[str] = set()
        """Every pod name any `view` showed: a duplicate pod shows up here."""

    def manifest(
        self, *, steps: int, script: str = "train.py", args: tuple[str, ...] = (), **policy: Any
    ) -> dict[str, Any]:
        """The quickstart job (4 ranks on 2 nodes) running ``script`` for ``steps`` steps."""
        return quickstart_manifest(
            self.work, steps=steps, script=script, args=("--step-time=0.1", *args), **policy
        )

    @abstractmethod
    def start(self) -> None:
        """Start the cluster's controller (local) or operator (Kubernetes)."""

    @abstractmethod
    def submit(self, manifest: dict[str, Any]) -> None:
        """Create the job as a user does (``job create -f`` / ``kubectl apply -f``)."""

    @abstractmethod
    def read(self) -> JobView:
        """The job now (raises when it does not exist)."""

    @abstractmethod
    def pods(self) -> dict[str, str]:
        """The job's live (not terminating) pods: name -> node."""

    @abstractmethod
    def inject(self, fault: str) -> None:
        """Queue a fault request (``trainguard fault inject``); the controller carries it out."""

    @abstractmethod
    def label_node(self, node: str, key: str, value: str) -> None:
        """Label a node as an administrator (or HyperPod's health agent) does."""

    @abstractmethod
    def set_suspend(self, suspend: bool) -> None:
        """Set the job's ``spec.runPolicy.suspend`` as a user does."""

    @abstractmethod
    def kill_controller(self) -> None:
        """SIGKILL the process leading the controller."""

    @abstractmethod
    def delete_job(self) -> None:
        """Delete the job and wait until it is gone."""

    @abstractmethod
    def job_exists(self) -> bool:
        """Whether the job object still exists."""

    @abstractmethod
    def memory_files(self) -> list[Path] | None:
        """Files of the job's node-local checkpoint memory (None: not observable here)."""

    @abstractmethod
    def log_lines(self) -> list[str]:
        """Every training log line the job's pods wrote so far."""

    def view(self) -> JobView:
        """`read`, remembering every pod seen (`seen_pods`)."""
        found = self.read()
        self.seen_pods.update(found.pods)
        return found

    def step(self) -> int:
        """The training step every rank has reached."""
        return min_step(losses(self.log_lines()))

    def wait_view(self, test: Callable[[JobView], bool], *, timeout: float, what: str) -> JobView:
        """Poll `view` until ``test`` holds; fail naming ``what`` with the last view (at once
        when the job ended without it)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.view()
            if test(found):
                return found
            if time.monotonic() > deadline or found.final() is not None:
                raise AssertionError(f"{self.name}: timed out waiting for {what}: {found}")
            time.sleep(0.25)

    def wait_step(self, step: int, *, timeout: float = 120) -> None:
        """Wait until every rank logged ``step``."""
        deadline = time.monotonic() + timeout
        while self.step() < step:
            view = self.view()
            assert view.final() is None, f"{self.name}: job ended before step {step}: {view}"
            assert time.monotonic() < deadline, f"{self.name}: step {step} not reached"
            time.sleep(0.25)

    def wait_released(self, *, timeout: float = 60) -> None:
        """Wait until the job has no pods and no node-local memory left."""
        deadline = time.monotonic() + timeout
        while True:
            pods, memory = self.pods(), self.memory_files()
            if not pods and not memory:
                return
            assert time.monotonic() < deadline, f"{self.name}: left behind {pods} {memory}"
            time.sleep(0.25)

    def wait_final(self, *, timeout: float = 180) -> JobView:
        """Wait until the job is Completed or Failed."""
        return self.wait_view(lambda v: v.final() is not None, timeout=timeout, what="the end")
