"""What a Pod's status says went wrong, in the words the job's Failed condition carries."""

from __future__ import annotations

from typing import Any

from trainguard.backends.kubernetes.podfailure import pod_failure


def pod(status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "status": status}


def test_a_command_not_found_names_the_container_reason_exit_code_and_message() -> None:
    terminated = {"exitCode": 128, "reason": "StartError", "message": 'exec: "nosuch": not found'}
    status = {"phase": "Failed", "containerStatuses": [
        {"name": "pytorch", "state": {"terminated": terminated}},
    ]}  # fmt: skip
    assert pod_failure(pod(status)) == (
        'container pytorch terminated: StartError (exit code 128): exec: "nosuch": not found'
    )


def test_a_kubelet_waiting_reason_is_a_failure_but_container_creating_is_not() -> None:
    waiting = {"reason": "CreateContainerConfigError", "message": 'secret "s" not found'}
    status = {"containerStatuses": [
        {"name": "pytorch", "state": {"waiting": waiting}},
        {"name": "sidecar", "state": {"waiting": {"reason": "ContainerCreating"}}},
    ]}  # fmt: skip
    assert pod_failure(pod(status)) == (
        'container pytorch waiting: CreateContainerConfigError: secret "s" not found'
    )


def test_a_clean_exit_or_a_running_container_is_no_failure() -> None:
    status = {"containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "b", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}},
    ]}  # fmt: skip
    assert pod_failure(pod(status)) is None
    assert pod_failure({"metadata": {"name": "p"}}) is None


def test_pod_level_reason_and_an_unschedulable_pod_are_reported() -> None:
    status = {
        "reason": "Evicted",
        "message": "The node was low on resource: memory.",
        "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/2 nodes are available"},
        ],
    }  # fmt: skip
    assert pod_failure(pod(status)) == (
        "pod Evicted: The node was low on resource: memory.; "
        "not scheduled: Unschedulable: 0/2 nodes are available"
    )
