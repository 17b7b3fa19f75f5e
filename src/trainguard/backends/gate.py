"""Whether a job may have pods now: the admission gate a queue manager (Kueue) controls.

HyperPod's task governance puts jobs behind Kueue: a job labelled
``kueue.x-k8s.io/queue-name`` gets a Workload, runs only once Kueue admits it (with the node
selectors and tolerations of the flavors it was given), and is stopped when Kueue evicts it to
make room for a more important job. The controller asks an `AdmissionGate` once per step and
acts on the answer (`trainguard.controller.suspension`); it never talks to Kueue itself, so
the local backend, which has no queue manager, uses the `OpenGate` and the controller's code
is the same everywhere. On Kubernetes the operator wires
`trainguard.backends.kubernetes.kueue.KueueGate`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from trainguard.store.records import JobRecord

REASON_ADMITTED = "Admitted"


@dataclass(frozen=True)
class Admission:
    """The gate's answer for one job."""

    admitted: bool
    reason: str = REASON_ADMITTED
    """Why not (``Pending``, ``Preempted``, ...), or ``Admitted``."""
    message: str = ""
    node_selector: dict[str, str] = field(default_factory=dict)
    """Node labels the admission requires of every pod (the assigned flavors')."""
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    """Tolerations the admission adds to every pod (Kubernetes ``Toleration`` objects)."""


OPEN = Admission(admitted=True, message="no queue manager")


class AdmissionGate(ABC):
    """Asks a queue manager whether a job may run, and tells it when the job is done."""

    @abstractmethod
    def admission(self, job: JobRecord, *, now: float) -> Admission:
        """Whether ``job`` may have pods now (creating its queue entry on first call)."""

    @abstractmethod
    def released(self, job: JobRecord, *, now: float) -> None:
        """``job`` was evicted and its pods are gone: its quota may be given back."""

    @abstractmethod
    def finished(self, job: JobRecord, *, succeeded: bool, message: str, now: float) -> None:
        """``job`` ended: its queue entry is finished and holds no quota."""

    def close(self) -> None:  # noqa: B027 (a gate without resources has nothing to close)
        """Release what the gate holds (caches, connections); nothing by default."""


class OpenGate(AdmissionGate):
    """No queue manager: every job is admitted as it is (``runPolicy.suspend`` still holds)."""

    def admission(self, job: JobRecord, *, now: float) -> Admission:
        """Admitted, always."""
        del job, now
        return OPEN

    def released(self, job: JobRecord, *, now: float) -> None:
        """Nothing to give back."""
        del job, now

    def finished(self, job: JobRecord, *, succeeded: bool, message: str, now: float) -> None:
        """Nothing to finish."""
        del job, succeeded, message, now
