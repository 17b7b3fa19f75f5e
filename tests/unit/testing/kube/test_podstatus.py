"""Pod phase, container states and conditions as the kubelet reports them."""

from __future__ import annotations

import pytest

from trainguard.testing.kube.podstatus import ContainerState, pod_phase, pod_status, without_times

NOW = "2026-01-01T00:00:00Z"


def running(name: str = "c") -> ContainerState:
    return ContainerState(name=name, image="", started_at=NOW, waiting_reason="")


def exited(code: int, name: str = "c") -> ContainerState:
    state = running(name)
    state.terminate(code, now=NOW)
    return state


@pytest.mark.parametrize(
    ("containers", "policy", "phase"),
    [
        ([ContainerState(name="c", image="")], "Never", "Pending"),
        ([running()], "Never", "Running"),
        ([exited(0)], "Never", "Succeeded"),
        ([exited(1)], "Never", "Failed"),
        ([exited(0), running("d")], "Never", "Running"),
        ([exited(0), exited(2, "d")], "Never", "Failed"),
        ([exited(0)], "Always", "Running"),
        ([exited(0)], "OnFailure", "Succeeded"),
        ([exited(1)], "OnFailure", "Running"),
        ([running(), ContainerState(name="d", image="")], "Never", "Pending"),
    ],
)
def test_phase(containers: list[ContainerState], policy: str, phase: str) -> None:
    assert pod_phase(containers, policy) == phase


def test_a_container_waiting_for_its_restart_counts_as_stopped() -> None:
    state = exited(1)
    state.restart()
    assert state.restart_count == 1
    assert pod_phase([state], "OnFailure") == "Running"
    assert state.to_status()["lastState"]["terminated"]["exitCode"] == 1


def test_terminated_states_carry_reason_and_signal() -> None:
    assert exited(0).to_status()["state"]["terminated"]["reason"] == "Completed"
    killed = exited(137).to_status()["state"]["terminated"]
    assert (killed["reason"], killed["signal"]) == ("Error", 9)


def test_status_keeps_foreign_conditions_and_transition_times() -> None:
    disruption = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"}
    first = pod_status(
        {"conditions": [disruption]},
        [running()],
        restart_policy="Never",
        pod_ip="127.1.0.2",
        host_ip="127.0.1.1",
        start_time=NOW,
        now=NOW,
    )
    assert [c["type"] for c in first["conditions"]] == [
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
        "DisruptionTarget",
    ]
    assert first["podIPs"] == [{"ip": "127.1.0.2"}]
    later = pod_status(
        first,
        [exited(0)],
        restart_policy="Never",
        pod_ip="127.1.0.2",
        host_ip="127.0.1.1",
        start_time=NOW,
        now="2026-01-01T00:01:00Z",
    )
    ready = next(c for c in later["conditions"] if c["type"] == "Ready")
    scheduled = next(c for c in later["conditions"] if c["type"] == "PodScheduled")
    assert (ready["status"], ready["reason"]) == ("False", "PodCompleted")
    assert ready["lastTransitionTime"] == "2026-01-01T00:01:00Z"
    assert scheduled["lastTransitionTime"] == NOW
    assert without_times(later) != without_times(first)
