"""What one health probe found: `HealthReport`, and the node action it implies.

Every check — disk, memory, kernel log, NVML, a deep stress test — answers with the same value,
so the node health agent, the deep-check runner and ``trainguard health check`` treat them
alike. A report separates *what is wrong* (``status``) from *what the node needs*
(``action``): an Xid 13 is a real fault worth recording, but it is the application's, so the
node stays schedulable; a double-bit ECC error needs a reboot; a GPU whose spare memory rows are
exhausted needs replacing. The four actions map one-to-one onto HyperPod's
``node-health-status`` values and are ordered by severity, so "the worst fault wins" is ``max``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Protocol, runtime_checkable

from trainguard import constants as c


class HealthStatus(StrEnum):
    """Outcome of one probe.

    ``NotApplicable`` means the probed thing is absent by design (no GPU on a CPU node); it is
    never used to hide a probe that could not run — that is ``Error``.
    """

    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    NOT_APPLICABLE = "NotApplicable"
    ERROR = "Error"


class NodeAction(IntEnum):
    """What a fault asks of the node, ordered by severity (``max`` picks the worst)."""

    NONE = 0
    CORDON = 1
    REBOOT = 2
    REPLACE = 3

    @property
    def label(self) -> str:
        """The ``node-health-status`` value this action puts on the node."""
        return _ACTION_LABELS[self]

    @classmethod
    def from_label(cls, value: str | None) -> NodeAction:
        """Inverse of `label`; an absent or unknown value counts as ``NONE`` (schedulable)."""
        return _LABEL_ACTIONS.get(value or "", cls.NONE)

    @classmethod
    def parse(cls, name: str) -> NodeAction:
        """``"reboot"`` / ``"REBOOT"`` / ``"UnschedulablePendingReboot"`` -> ``REBOOT``."""
        upper = name.strip().upper()
        if upper in cls.__members__:
            return cls[upper]
        if name in _LABEL_ACTIONS:
            return _LABEL_ACTIONS[name]
        choices = ", ".join(m.name.lower() for m in cls)
        raise ValueError(f"unknown node action {name!r}; expected one of {choices}")


_ACTION_LABELS = {
    NodeAction.NONE: c.HEALTH_SCHEDULABLE,
    NodeAction.CORDON: c.HEALTH_UNSCHEDULABLE,
    NodeAction.REBOOT: c.HEALTH_PENDING_REBOOT,
    NodeAction.REPLACE: c.HEALTH_PENDING_REPLACEMENT,
}
_LABEL_ACTIONS = {label: action for action, label in _ACTION_LABELS.items()}


@dataclass(frozen=True)
class HealthReport:
    """The answer of one check at one time.

    Attributes:
        check: name of the check that produced it (``DiskSpace``, ``KernelLog``...).
        status: see `HealthStatus`.
        reason: CamelCase cause, usable as a Kubernetes label value (``XidHardwareFailure``).
        message: one human sentence with the numbers that matter.
        fault_type: high-level category for the ``fault-types`` label (``NvidiaErrorReboot``);
            empty when healthy.
        action: what the node needs; ``NONE`` unless ``status`` is ``UNHEALTHY``.
        evidence: the measured values, JSON-serialisable, for people and for tests.
        time: wall-clock seconds the check ran at.
    """

    check: str
    status: HealthStatus
    reason: str
    message: str
    time: float
    fault_type: str = ""
    action: NodeAction = NodeAction.NONE
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status is not HealthStatus.UNHEALTHY and self.action is not NodeAction.NONE:
            raise ValueError(f"{self.check}: only an Unhealthy report may ask for a node action")

    @property
    def failed(self) -> bool:
        """``True`` for an Unhealthy report (whatever its action)."""
        return self.status is HealthStatus.UNHEALTHY

    def to_json(self) -> dict[str, Any]:
        """The report as ``health check --output json`` prints it."""
        return {
            "check": self.check,
            "status": self.status.value,
            "reason": self.reason,
            "message": self.message,
            "faultType": self.fault_type,
            "action": self.action.label if self.failed else None,
            "evidence": self.evidence,
            "time": self.time,
        }


def healthy(check: str, now: float, message: str, **evidence: Any) -> HealthReport:
    """A Healthy report with reason ``Healthy``."""
    return HealthReport(check, HealthStatus.HEALTHY, "Healthy", message, now, evidence=evidence)


def not_applicable(check: str, now: float, message: str, **evidence: Any) -> HealthReport:
    """A NotApplicable report (the probed thing is absent by design)."""
    return HealthReport(
        check, HealthStatus.NOT_APPLICABLE, "NotApplicable", message, now, evidence=evidence
    )


def probe_error(check: str, now: float, message: str, **evidence: Any) -> HealthReport:
    """An Error report: the probe could not run, so nothing is known about the node."""
    return HealthReport(
        check, HealthStatus.ERROR, "HealthCheckError", message, now, evidence=evidence
    )


def unhealthy(
    check: str,
    now: float,
    *,
    reason: str,
    message: str,
    fault_type: str,
    action: NodeAction,
    **evidence: Any,
) -> HealthReport:
    """An Unhealthy report asking the node for ``action``."""
    return HealthReport(
        check,
        HealthStatus.UNHEALTHY,
        reason,
        message,
        now,
        fault_type=fault_type,
        action=action,
        evidence=evidence,
    )


@runtime_checkable
class HealthCheck(Protocol):
    """One probe. ``check`` must not raise for a sick node — it returns an Unhealthy report;
    it raises `trainguard.errors.HealthCheckError` only when it cannot probe at all."""

    name: str

    def check(self, now: float) -> HealthReport:
        """Probe once; ``now`` is the wall-clock time to stamp the report with."""
        ...
