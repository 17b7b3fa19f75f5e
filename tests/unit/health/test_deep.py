"""Deep checks in-process: the stress burn catches injected corruption, and the runner's label
protocol (InProgress -> Passed | Failed, Unschedulable while running, previous health restored)."""

from __future__ import annotations

import json
from typing import Any

import torch

from trainguard import constants as c
from trainguard.errors import HealthCheckError
from trainguard.health.deep.config import StressConfig
from trainguard.health.deep.runner import DeepHealthRunner
from trainguard.health.deep.stress import InstanceStress, burn, memory_patterns
from trainguard.health.report import HealthReport, NodeAction, healthy, unhealthy
from trainguard.testing import FakeClock, InMemoryNodeSink

SMALL = StressConfig(duration_s=0.2, matrix_size=128, memory_mb=2, include_cpu=True)


def test_stress_passes_on_a_sound_cpu_and_reports_its_numbers() -> None:
    report = InstanceStress(SMALL).check(0.0)
    assert report.status.value == "Healthy", report.message
    cpu = report.evidence["devices"]["cpu"]
    assert cpu["compute"]["iterations"] >= 1 and cpu["compute"]["corrupted"] == 0
    assert cpu["compute"]["maxResidual"] < SMALL.tolerance
    assert cpu["memory"]["bytes"] == 2 * 1024 * 1024 and cpu["memory"]["mismatches"] == 0


class FlakyMatmul:
    """A product unit that, from its third call on, gets one element slightly wrong."""

    def __init__(self, error: float) -> None:
        self.calls = 0
        self.error = error

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        c = torch.matmul(a, b)
        if self.calls >= 3:
            c[5, 7] += self.error
        return c


STEP = 1 / 32  # exact in binary: the iteration count has no rounding edge


class Ticks:
    """A burn timer that advances a fixed step per reading: the burn does the same number of
    products however loaded the machine is (0.2 s of real time under load held 1 or 2, fewer
    than `FlakyMatmul` needs to start lying)."""

    def __init__(self, step: float) -> None:
        self.step, self.now = step, 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_stress_catches_a_large_and_a_tiny_silent_corruption() -> None:
    big = burn("cpu", SMALL, matmul=FlakyMatmul(1.0), clock=Ticks(STEP))
    assert big["iterations"] == 6  # readings 1/32 .. 6/32 after the start are < 0.2 s
    assert big["corrupted"] == 6 - 2 and big["maxResidual"] > SMALL.tolerance
    tiny = burn("cpu", SMALL, matmul=FlakyMatmul(1e-6), clock=Ticks(STEP))  # below the bound
    assert tiny["corrupted"] == 6 - 2 and tiny["differentFromFirst"] == 6 - 2
    assert tiny["maxResidual"] <= SMALL.tolerance  # caught only as not bit-identical
    stress = InstanceStress(SMALL, matmul=FlakyMatmul(1.0), clock=Ticks(STEP))
    report = stress.check(0.0)
    assert report.reason == "SilentDataCorruption" and report.action is NodeAction.REPLACE


def test_memory_pattern_test_catches_a_flipped_byte() -> None:
    def flip(buffer: torch.Tensor) -> None:
        buffer[12345] ^= 0x10

    evidence = memory_patterns("cpu", 1, after_write=flip)
    assert evidence["mismatches"] == evidence["patterns"] == 5
    report = InstanceStress(SMALL, after_write=flip).check(0.0)
    assert "bytes read back wrong" in report.message


class Scripted:
    """A deep check that answers what the test says (and records the node's labels)."""

    def __init__(self, name: str, answer: Any, sink: InMemoryNodeSink) -> None:
        self.name, self.answer, self.sink = name, answer, sink
        self.seen: dict[str, str] = {}

    def check(self, now: float) -> HealthReport:
        self.seen = self.sink.node_labels("n1")
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer(self.name, now)  # type: ignore[no-any-return]


def ok(name: str, now: float) -> HealthReport:
    return healthy(name, now, "fine")


def bad(name: str, now: float, **evidence: Any) -> HealthReport:
    return unhealthy(
        name,
        now,
        reason="BusBandwidthLow",
        message="slow",
        fault_type="Deep",
        action=NodeAction.REPLACE,
        **evidence,
    )


def test_passed_deep_check_marks_nodes_while_running_and_restores_health() -> None:
    sink = InMemoryNodeSink({"n1": {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}})
    probe = Scripted("InstanceStress", ok, sink)
    results = DeepHealthRunner(sink, clock=FakeClock()).run(["n1"], [probe])
    assert probe.seen[c.LABEL_NODE_HEALTH] == c.HEALTH_UNSCHEDULABLE
    assert probe.seen[c.LABEL_DEEP_HEALTH] == c.DEEP_HEALTH_IN_PROGRESS
    labels = sink.node_labels("n1")
    assert labels[c.LABEL_NODE_HEALTH] == c.HEALTH_SCHEDULABLE
    assert labels[c.LABEL_DEEP_HEALTH] == c.DEEP_HEALTH_PASSED
    assert results["n1"].status == c.DEEP_HEALTH_PASSED
    assert c.ANNOTATION_DEEP_HEALTH_PREVIOUS not in sink.node_annotations("n1")
    assert [e.reason for e in sink.events] == [
        c.REASON_DEEP_HEALTH_STARTED,
        c.REASON_DEEP_HEALTH_PASSED,
    ]


def test_failed_deep_check_asks_for_replacement_only_on_the_named_nodes() -> None:
    sink = InMemoryNodeSink({"n1": {}, "n2": {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}})
    check = Scripted(
        "InstanceConnectivity", lambda name, now: bad(name, now, failedNodes=["n1"]), sink
    )
    results = DeepHealthRunner(sink, clock=FakeClock()).run(["n1", "n2"], [check])
    n1, n2 = sink.node_labels("n1"), sink.node_labels("n2")
    assert n1[c.LABEL_NODE_HEALTH] == c.HEALTH_PENDING_REPLACEMENT
    assert n1[c.LABEL_DEEP_HEALTH] == c.DEEP_HEALTH_FAILED
    assert n1[c.LABEL_FAULT_REASONS] == "BusBandwidthLow"
    details = json.loads(sink.node_annotations("n1")[c.ANNOTATION_FAULT_DETAILS])
    assert details[-1]["source"] == "deep-health-check"
    assert n2[c.LABEL_NODE_HEALTH] == c.HEALTH_SCHEDULABLE
    assert n2[c.LABEL_DEEP_HEALTH] == c.DEEP_HEALTH_PASSED
    assert results["n1"].status == c.DEEP_HEALTH_FAILED
    assert sink.events_for("n1", c.REASON_DEEP_HEALTH_FAILED)


def test_a_check_that_cannot_run_fails_and_leaves_the_node_cordoned() -> None:
    sink = InMemoryNodeSink({"n1": {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}})
    check = Scripted("InstanceStress", HealthCheckError("CUDA out of memory"), sink)
    DeepHealthRunner(sink, clock=FakeClock()).run(["n1"], [check])
    labels = sink.node_labels("n1")
    assert labels[c.LABEL_DEEP_HEALTH] == c.DEEP_HEALTH_FAILED
    assert labels[c.LABEL_NODE_HEALTH] == c.HEALTH_UNSCHEDULABLE


def test_a_node_already_pending_reboot_is_not_lowered_by_a_passing_deep_check() -> None:
    sink = InMemoryNodeSink({"n1": {c.LABEL_NODE_HEALTH: c.HEALTH_PENDING_REBOOT}})
    check = Scripted("InstanceStress", ok, sink)
    DeepHealthRunner(sink, clock=FakeClock()).run(["n1"], [check])
    assert check.seen[c.LABEL_NODE_HEALTH] == c.HEALTH_PENDING_REBOOT
    assert sink.node_labels("n1")[c.LABEL_NODE_HEALTH] == c.HEALTH_PENDING_REBOOT
