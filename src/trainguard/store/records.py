"""The records the store keeps: jobs, pods, nodes, events, restarts, fault requests, the lease.

Plain dataclasses, so the controller and the CLI pass them around without a database session,
and every implementation of the `Store` protocol (SQLite now, Kubernetes objects later) maps
the same fields. A `JobRecord` carries its job typed (`HyperPodPyTorchJob`, `JobStatus`,
`JobState`): JSON is made and read only inside a store implementation, so no caller
re-validates a dict. Labels and backend bookkeeping (``info``) stay plain mappings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from trainguard import constants as c
from trainguard.policy.restart import RestartHistory
from trainguard.spec.faults import FaultSpec
from trainguard.spec.job import HyperPodPyTorchJob
from trainguard.spec.status import JobStatus
from trainguard.store.jobstate import JobState


def job_key(namespace: str, name: str) -> str:
    """``namespace/name``, the identity of a job in logs and maps."""
    return f"{namespace}/{name}"


@dataclass
class JobRecord:
    """A job: its manifest, the HyperPod-shaped status, the controller's own state and its
    restart history, all typed."""

    namespace: str
    name: str
    uid: str
    job: HyperPodPyTorchJob
    """The manifest, parsed (treat as read-only: a store may share it between reads)."""
    manifest: dict[str, Any] = field(default_factory=dict)
    """The manifest as submitted (with ``metadata.creationTimestamp``), for showing it back."""
    status: JobStatus = field(default_factory=JobStatus)
    state: JobState = field(default_factory=JobState)
    created_at: float = 0.0
    finished_at: float | None = None
    deletion_requested: bool = False
    source_dir: str | None = None
    version: int = 0
    restarts: list[RestartRecord] = field(default_factory=list)
    """The job's restart history (the store's restart rows), oldest first."""
    defects: tuple[str, ...] = ()
    """Stored parts the models refused (each replaced by an empty model), named; the
    controller fails such a job (`CorruptRecord`)."""
    loaded: Any = field(default=None, repr=False, compare=False)
    """Opaque to callers: what the store read, so `Store.commit_step` can tell an unchanged
    status and state from a changed one without the caller keeping a copy."""

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return job_key(self.namespace, self.name)

    @property
    def history(self) -> RestartHistory:
        """The restart history in the form the restart policy takes."""
        return restart_history(self.restarts)


def restart_history(restarts: list[RestartRecord]) -> RestartHistory:
    """Counters and the PLR window from restart rows (a JLR starts a fresh PLR window).

    Elastic resizes (kind Scale) are restarts too but count against no limit: they are skipped.
    """
    counted = [r for r in restarts if r.restart_type != c.RESTART_SCALE]
    full = sum(1 for r in counted if r.restart_type == c.RESTART_JLR)
    plr_times: list[float] = []
    for restart in counted:
        if restart.restart_type == c.RESTART_JLR:
            plr_times = []
        else:
            plr_times.append(restart.time)
    return RestartHistory(len(counted), full, tuple(plr_times))


@dataclass
class PodRecord:
    """A pod of a job: one agent on one node (or a spare agent waiting for a rank)."""

    namespace: str
    name: str
    job: str
    node: str
    replica_spec: str
    node_rank: int | None
    spare: bool = False
    attempt: int = 0
    phase: str = "Pending"
    host: str = "127.0.0.1"
    port: int | None = None
    pid: int | None = None
    created_at: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str | None:
        """Base URL of the pod's agent, once it has a port (``info["url"]`` overrides)."""
        if "url" in self.info:
            return str(self.info["url"])
        return None if self.port is None else f"http://{self.host}:{self.port}"


@dataclass
class NodeRecord:
    """A node: labels (health status among them), annotations, and backend bookkeeping."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventRecord:
    """A Kubernetes-style event about a job, pod or node."""

    kind: str
    namespace: str
    name: str
    type: str
    reason: str
    message: str
    time: float
    component: str = "hyperpod-pytorch-job-controller"


@dataclass(frozen=True)
class RestartRecord:
    """One restart of a job, kept for the restart policy's windows and for history."""

    namespace: str
    job: str
    time: float
    restart_type: str
    reason: str
    faulty_pods: tuple[str, ...] = ()
    faulty_ranks: tuple[int, ...] = ()
    faulty_nodes: tuple[str, ...] = ()


class FaultOutcome(StrEnum):
    """What became of a fault request: a fault that never fired must not look like a test."""

    PENDING = "pending"
    INJECTED = "injected"
    NOT_INJECTED = "not injected"


@dataclass(frozen=True)
class FaultRequest:
    """A fault to inject, asked for with ``run --fault`` or ``fault inject``; the controller's
    fault injector runs it and records the outcome and the training facts its timing needs."""

    id: int
    namespace: str
    job: str
    spec: FaultSpec
    created_at: float
    done_at: float | None = None
    """When it was injected, or when the controller gave up on it."""
    result: str | None = None
    """What was done, or why not."""
    outcome: FaultOutcome = FaultOutcome.PENDING
    training_at: float | None = None
    """When the injector first saw the job training while this request was pending: ``after=``
    counts from here (`trainguard.controller.fault_requests`)."""
    reported_step: int | None = None
    """The newest training step the injector saw reported while this request was pending
    (for ``at-step=``)."""


@dataclass(frozen=True)
class Lease:
    """Who runs the controller for this store, and how to reach it."""

    holder: str
    pid: int
    heartbeat: float
    """Wall-clock time of the last renewal, for people only: nobody judges staleness by it."""
    callback_url: str | None = None
    metrics_url: str | None = None
    renewals: int = 0
    """Counts renewals; a challenger that sees it unchanged for `duration` seconds on its own
    monotonic clock may take the lease (see `trainguard.controller.lease`)."""
    duration: float = 10.0
    """Seconds the holder promises to renew within; challengers wait this long."""
