"""The records the store keeps: jobs, pods, nodes, events, restarts, fault requests, the lease.

Plain dataclasses, so the controller and the CLI pass them around without a database session,
and every backend of the `Store` interface (SQLite now, Kubernetes objects later) maps the same
fields. JSON-shaped fields (manifest, status, labels) stay dicts here; typed views are built by
the callers that need them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def job_key(namespace: str, name: str) -> str:
    """``namespace/name``, the identity of a job in logs and maps."""
    return f"{namespace}/{name}"


@dataclass
class JobRecord:
    """A job: its manifest, the HyperPod-shaped status, and the controller's own state."""

    namespace: str
    name: str
    uid: str
    manifest: dict[str, Any]
    status: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    finished_at: float | None = None
    deletion_requested: bool = False
    source_dir: str | None = None
    version: int = 0

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return job_key(self.namespace, self.name)


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


@dataclass(frozen=True)
class FaultRequest:
    """A fault to inject, asked for with ``trainguard fault inject``; the controller runs it."""

    id: int
    namespace: str
    job: str
    spec: str
    created_at: float
    done_at: float | None = None
    result: str | None = None


@dataclass(frozen=True)
class Lease:
    """Who runs the controller for this store, and how to reach it."""

    holder: str
    pid: int
    heartbeat: float
    callback_url: str | None = None
    metrics_url: str | None = None
