"""Fault detection priorities and checkpoint-step agreement, on plain values."""

from __future__ import annotations

from trainguard import constants as c
from trainguard.agent.protocol import AgentState, AgentStatus, TrainguardStatus, WorkerFailure
from trainguard.controller.context import PodView
from trainguard.controller.detect import detect_fault, job_reason
from trainguard.controller.held_steps import agreed_step, held_steps, progress_payload
from trainguard.store import NodeRecord, PodRecord

HEALTHY = {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}


def pod(
    rank: int, state: AgentState = AgentState.RUNNING, *, alive: bool = True, **extra: object
) -> PodView:
    status = AgentStatus(status=state, trainguard=TrainguardStatus(**extra))  # type: ignore[arg-type]
    return PodView(
        PodRecord("default", f"p{rank}", "j", f"node-{rank}", "pods", rank), alive, status
    )


def nodes(*unhealthy: str) -> dict[str, NodeRecord]:
    found = {}
    for i in range(3):
        name = f"node-{i}"
        labels = {c.LABEL_NODE_HEALTH: c.HEALTH_PENDING_REBOOT} if name in unhealthy else HEALTHY
        found[name] = NodeRecord(name, labels)
    return found


def test_healthy_job_has_no_fault() -> None:
    assert detect_fault([pod(0), pod(1)], nodes(), now=1.0) is None


def test_node_fault_outranks_crashes_it_caused() -> None:
    crashed = pod(0, AgentState.FAULTED, detected_at=0.5)
    fault = detect_fault([crashed, pod(1)], nodes("node-1"), now=1.0)
    assert fault is not None and (fault.reason, fault.nodes, fault.replace) == (
        "NodeFault",
        ["node-1"],
        ["p1"],
    )


def test_earliest_faulted_agent_is_the_root_cause() -> None:
    late = pod(0, AgentState.FAULTED, detected_at=2.0)
    early = pod(
        1,
        AgentState.FAULTED,
        detected_at=1.0,
        failures=[WorkerFailure(local_rank=0, global_rank=2, exitcode=1, time=1.0)],
    )
    early.status.reason = "LogHang_JobHangingDetection"  # type: ignore[union-attr]
    fault = detect_fault([late, early], nodes(), now=3.0)
    assert fault is not None
    assert fault.reason == "LogStateHanging_JobHangingDetection"
    assert (fault.detected_at, fault.pods, fault.ranks) == (1.0, ["p1", "p0"], [2])


def test_lost_pod() -> None:
    fault = detect_fault([pod(0, alive=False), pod(1)], nodes(), now=1.0)
    assert fault is not None and (fault.reason, fault.replace) == ("PodLost", ["p0"])


def test_reason_mapping() -> None:
    assert job_reason("LogSlow_LossSpike") == "LogStateSlow_LossSpike"
    assert job_reason("LogFault_Nccl") == "LogStateFault_Nccl"
    assert job_reason("WorkerCrash") == "WorkerCrash"
    assert job_reason(None) == "WorkerFault"


def test_progress_agreement() -> None:
    status = AgentStatus(
        status=AgentState.RUNNING,
        progress={"trainguard": {"progressCount": 30, "steps": [30, 10, 20]}},
    )
    assert held_steps(status) == [10, 20, 30]
    assert agreed_step({"0": [10, 20, 30], "1": [10, 20]}, 2) == 20
    assert agreed_step({"0": [10, 20, 30]}, 2) is None
    assert agreed_step({"0": [30], "1": [20]}, 2) is None
    assert progress_payload(None) == {}
