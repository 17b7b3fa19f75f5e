"""A controller over a real SQLite store, fake agents, a fake backend and a fake clock."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from trainguard import constants as c
from trainguard.backends.gate import AdmissionGate
from trainguard.controller.agents import AgentHub
from trainguard.controller.deps import ControllerSettings
from trainguard.controller.loop import Controller
from trainguard.controller.state import JobPhase, JobState
from trainguard.controller.submit import submit
from trainguard.spec import HyperPodPyTorchJob, JobStatus
from trainguard.spec.faults import parse_fault
from trainguard.store import JobRecord, NodeRecord, SqliteStore
from trainguard.testing import FakeAgent, FakeBackend, FakeClock

BASE: dict[str, Any] = {
    "apiVersion": "sagemaker.amazonaws.com/v1",
    "kind": "HyperPodPyTorchJob",
    "metadata": {"name": "train"},
    "spec": {
        "nprocPerNode": "2",
        "replicaSpecs": [
            {
                "name": "pods",
                "replicas": 2,
                "template": {
                    "spec": {
                        "containers": [{"name": "pytorch", "command": ["hyperpodrun", "train.py"]}]
                    }
                },
            }
        ],
        "runPolicy": {
            "jobMaxRetryCount": 10,
            "restartPolicy": {
                "numRestartBeforeFullJobRestart": 3,
                "evalPeriodSeconds": 3600,
                "maxFullJobRestarts": 1,
            },
        },
    },
}


def manifest(**run_policy: Any) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    document["spec"]["runPolicy"].update(run_policy)
    return document


class Harness:
    def __init__(
        self, tmp_path: Path, *, nodes: int = 3, gate: AdmissionGate | None = None
    ) -> None:
        self.gate = gate
        self.store = SqliteStore(tmp_path / "state.db")
        self.clock = FakeClock()
        for index in range(nodes):
            self.add_node(f"node-{index}")
        self.backend = FakeBackend(self.store)
        self.controller = self.new_controller()

    def new_controller(self) -> Controller:
        hub = AgentHub(client_factory=self.backend.client_factory, clock=self.clock)
        return Controller(
            store=self.store,
            backend=self.backend,
            hub=hub,
            clock=self.clock,
            settings=ControllerSettings(poll_interval=0),
            serve_callbacks=False,
            gate=self.gate,
        )

    def add_node(self, name: str) -> None:
        labels = {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE, c.LABEL_INSTANCE_TYPE: "ml.local"}
        self.store.save_node(NodeRecord(name, labels))

    def submit(self, document: dict[str, Any], faults: list[str] | None = None) -> JobRecord:
        job = HyperPodPyTorchJob.model_validate(document)
        specs = [parse_fault(f) for f in faults or []]  # parsed at the boundary, as the CLI does
        return submit(self.store, job, now=self.clock.wall(), faults=specs)

    def step(self, times: int = 1, advance: float = 0.1) -> JobPhase | None:
        phase = None
        for _ in range(times):
            self.clock.advance(advance)
            phase = self.controller.step().get("default/train")
        return phase

    def run_until(self, phase: JobPhase, limit: int = 20) -> None:
        for _ in range(limit):
            if self.step() is phase:
                return
        raise AssertionError(f"job never reached {phase}; it is {self.state().phase}")

    def record(self) -> JobRecord:
        return self.store.get_job("default", "train")

    def state(self) -> JobState:
        return JobState.model_validate(self.record().state)

    def status(self) -> JobStatus:
        return JobStatus.model_validate(self.record().status)

    def pods(self) -> list[Any]:
        return self.store.list_pods("default", "train")

    def agent(self, node_rank: int) -> FakeAgent:
        pod = next(p for p in self.pods() if p.node_rank == node_rank and not p.spare)
        return self.backend.agents[pod.name]

    def events(self) -> list[tuple[str, str, str]]:
        return [
            (e.type, e.reason, e.message)
            for e in self.store.list_events(namespace="default", name="train")
        ]

    def node_events(self) -> list[tuple[str, str, str]]:
        return [(e.type, e.reason, e.message) for e in self.store.list_events(kind="Node")]
