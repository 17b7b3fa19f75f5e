"""A pod's ``status`` as the kubelet reports it, computed from its containers' states — pure.

The fields and words are the kubelet's (``pkg/kubelet/kubelet_pods.go``): container states
``waiting`` (``ContainerCreating``, ``CreateContainerConfigError``), ``running``,
``terminated`` (``Completed`` for exit 0, ``Error`` otherwise, ``StartError`` when the command
cannot be executed; a signal death reads 128+N as a runtime reports it), the phase rules per
``restartPolicy``, and the four conditions. Conditions owned by others (``DisruptionTarget``
from the taint manager) are kept; ``lastTransitionTime`` only moves when a status flips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]
KUBELET_CONDITIONS = ("PodScheduled", "Initialized", "ContainersReady", "Ready")


@dataclass
class ContainerState:
    """What the runtime knows of one container; `to_status` renders its ``containerStatuses``."""

    name: str
    image: str
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    started_at: str | None = None
    exit_code: int | None = None
    finished_at: str | None = None
    terminated_reason: str = ""
    terminated_message: str = ""
    restart_count: int = 0
    last_terminated: JSON | None = None

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.exit_code is None

    @property
    def terminated(self) -> bool:
        return self.exit_code is not None

    def terminate(self, exit_code: int, *, now: str, reason: str = "", message: str = "") -> None:
        """Record the container's end: ``Completed`` for 0, ``Error`` otherwise."""
        self.exit_code = exit_code
        self.finished_at = now
        self.terminated_reason = reason or ("Completed" if exit_code == 0 else "Error")
        self.terminated_message = message

    def restart(self) -> None:
        """Back to waiting for a restart; the last run moves to ``lastState``."""
        self.last_terminated = self._terminated_state()
        self.restart_count += 1
        self.started_at = self.exit_code = self.finished_at = None
        self.waiting_reason, self.waiting_message = "ContainerCreating", ""

    def _terminated_state(self) -> JSON:
        state: JSON = {
            "exitCode": self.exit_code,
            "reason": self.terminated_reason,
            "startedAt": self.started_at or self.finished_at,
            "finishedAt": self.finished_at,
        }
        if self.terminated_message:
            state["message"] = self.terminated_message
        if self.exit_code is not None and self.exit_code > 128:
            state["signal"] = self.exit_code - 128
        return state

    def to_status(self) -> JSON:
        if self.terminated:
            state: JSON = {"terminated": self._terminated_state()}
        elif self.running:
            state = {"running": {"startedAt": self.started_at}}
        else:
            waiting: JSON = {"reason": self.waiting_reason}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            state = {"waiting": waiting}
        return {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.running,
            "started": self.running,
            "restartCount": self.restart_count,
            "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
        }


def pod_phase(containers: Sequence[ContainerState], restart_policy: str) -> str:
    """The kubelet's ``getPhase`` for pods without init containers.

    A container waiting to be restarted counts as stopped, not as never started.
    """
    if any(not c.running and not c.terminated and not c.last_terminated for c in containers):
        return "Pending"
    if any(c.running for c in containers):
        return "Running"
    stopped = [c for c in containers if not c.running]
    if not stopped:
        return "Pending"
    if restart_policy == "Always":
        return "Running"
    if all(c.terminated and c.exit_code == 0 for c in stopped):
        return "Succeeded"
    return "Failed" if restart_policy == "Never" else "Running"


def _condition(
    previous: Mapping[str, JSON],
    kind: str,
    ok: bool,
    now: str,
    *,
    reason: str = "",
    message: str = "",
) -> JSON:
    status = "True" if ok else "False"
    old = previous.get(kind)
    moved = old is None or old.get("status") != status
    condition: JSON = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": now if moved or old is None else old.get("lastTransitionTime"),
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def pod_conditions(
    previous: Sequence[JSON], containers: Sequence[ContainerState], phase: str, now: str
) -> list[JSON]:
    """Kubelet conditions in upstream order, then the conditions others own, untouched."""
    by_type = {c.get("type", ""): c for c in previous}
    unready = [c.name for c in containers if not c.running]
    reason, message = "", ""
    if phase in ("Succeeded", "Failed"):
        reason = "PodCompleted"
    elif unready:
        reason = "ContainersNotReady"
        message = f"containers with unready status: [{' '.join(unready)}]"
    ours = [
        _condition(by_type, "Initialized", True, now),
        _condition(by_type, "Ready", not unready, now, reason=reason, message=message),
        _condition(by_type, "ContainersReady", not unready, now, reason=reason, message=message),
        _condition(by_type, "PodScheduled", True, now),
    ]
    foreign = [c for c in previous if c.get("type") not in KUBELET_CONDITIONS]
    return ours + foreign


def pod_status(
    previous: Mapping[str, Any],
    containers: Sequence[ContainerState],
    *,
    restart_policy: str,
    pod_ip: str,
    host_ip: str,
    start_time: str,
    now: str,
) -> JSON:
    """The whole ``status`` the kubelet writes for a pod it runs."""
    phase = pod_phase(containers, restart_policy)
    return {
        **{k: v for k, v in previous.items() if k in ("nominatedNodeName", "qosClass")},
        "phase": phase,
        "conditions": pod_conditions(previous.get("conditions") or [], containers, phase, now),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start_time,
        "containerStatuses": [c.to_status() for c in containers],
    }


def without_times(status: Mapping[str, Any]) -> JSON:
    """``status`` minus the fields that only carry time, to tell a real change from none."""
    conditions = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"}
        for c in status.get("conditions") or []
    ]
    return {**status, "conditions": conditions}
