"""How the controller scales: step time and memory with 1,000 concurrent jobs of 4 pods each.

The agents are `trainguard.testing.FakeAgent` objects answering the agent API in-process, so the
figure is the controller's own cost (store reads/writes, status polls through the hub, the state
machine), not the network's. Steady state is measured with every job Running and agent statuses
re-polled at the default poll interval; a second figure has 1% of the jobs going through a
process-level restart during the measured steps. There is no baseline: torchrun has no controller.
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
from pathlib import Path

import psutil

from bench.common import Row, write_results
from trainguard import constants as c
from trainguard.controller.agents import AgentHub
from trainguard.controller.deps import ControllerSettings
from trainguard.controller.loop import Controller
from trainguard.controller.state import JobPhase
from trainguard.controller.submit import submit
from trainguard.spec import HyperPodPyTorchJob
from trainguard.store import NodeRecord, SqliteStore
from trainguard.testing import FakeBackend, FakeClock

PODS_PER_JOB = 4


def job_manifest(index: int) -> HyperPodPyTorchJob:
    """A 4-pod job with a restart policy and two log rules, like the HyperPod samples."""
    container = {"name": "pytorch", "command": ["hyperpodrun", "--nproc-per-node=2", "train.py"]}
    return HyperPodPyTorchJob.model_validate(
        {
            "apiVersion": "sagemaker.amazonaws.com/v1",
            "kind": "HyperPodPyTorchJob",
            "metadata": {"name": f"job-{index:04d}"},
            "spec": {
                "nprocPerNode": "2",
                "replicaSpecs": [
                    {
                        "name": "pods",
                        "replicas": PODS_PER_JOB,
                        "template": {"spec": {"containers": [container]}},
                    }
                ],
                "runPolicy": {
                    "jobMaxRetryCount": 100,
                    "restartPolicy": {
                        "numRestartBeforeFullJobRestart": 50,
                        "evalPeriodSeconds": 3600,
                        "maxFullJobRestarts": 1,
                    },
                    "logMonitoringConfiguration": [
                        {
                            "name": "JobStart",
                            "logPattern": ".*Loss:.*",
                            "expectedStartCutOffInSeconds": 120,
                        },
                    ],
                },
            },
        }
    )


class Scale:
    """A controller over a real SQLite store with ``jobs`` jobs on fake agents."""

    def __init__(self, directory: Path, jobs: int) -> None:
        self.store = SqliteStore(directory / "state.db")
        self.clock = FakeClock()
        labels = {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE, c.LABEL_INSTANCE_TYPE: "ml.local"}
        for index in range(jobs * PODS_PER_JOB):
            self.store.save_node(NodeRecord(f"node-{index:05d}", dict(labels)))
        self.backend = FakeBackend(self.store)
        self.settings = ControllerSettings()
        hub = AgentHub(client_factory=self.backend.client_factory, clock=self.clock)
        self.controller = Controller(
            store=self.store,
            backend=self.backend,
            hub=hub,
            clock=self.clock,
            settings=self.settings,
            serve_callbacks=False,
        )
        for index in range(jobs):
            submit(self.store, job_manifest(index), now=self.clock.wall())

    def step(self) -> tuple[float, dict[str, JobPhase | None]]:
        """One controller step after one loop interval of (fake) time; its wall seconds."""
        self.clock.advance(self.settings.loop_interval)
        started = time.perf_counter()
        phases = self.controller.step()
        return time.perf_counter() - started, phases

    def run_until_all_running(self, limit: int = 50) -> int:
        for count in range(1, limit + 1):
            _, phases = self.step()
            if all(phase is JobPhase.RUNNING for phase in phases.values()):
                return count
        raise RuntimeError("jobs did not all reach Running")

    def crash_some(self, fraction: float, rng: random.Random) -> int:
        """Crash a worker in ``fraction`` of the running jobs."""
        running = [a for a in self.backend.agents.values() if a.state.value == "running"]
        victims = rng.sample(running, max(1, int(len(running) / PODS_PER_JOB * fraction)))
        for agent in victims:
            agent.crash(now=self.clock.wall())
        return len(victims)


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def measure(jobs: int, steps: int) -> list[Row]:
    before = rss_mb()
    with tempfile.TemporaryDirectory(prefix="trainguard-bench-") as tmp:
        scale = Scale(Path(tmp), jobs)
        startup_steps = scale.run_until_all_running()
        steady = [scale.step()[0] for _ in range(steps)]
        rng = random.Random(0)
        faulty = []
        for _ in range(steps):
            scale.crash_some(0.01, rng)
            faulty.append(scale.step()[0])
        rss = rss_mb() - before
        scale.controller.close()
    print(f"{jobs} jobs reached Running in {startup_steps} steps")
    suffix = f"{jobs}_jobs"
    return [
        Row.of(f"controller_step_ms_{suffix}", [s * 1000 for s in steady], None, "ms"),
        Row.of(
            f"controller_step_ms_{suffix}_1pct_restarting", [s * 1000 for s in faulty], None, "ms"
        ),
        Row(f"controller_rss_mb_{suffix}", rss, None, "MiB"),
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench controller_scale")
    parser.add_argument("--quick", action="store_true", help="fewer measured steps")
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args(argv)
    rows = measure(args.jobs, steps=5 if args.quick else 20)
    write_results("controller_scale", rows)
    return 0
