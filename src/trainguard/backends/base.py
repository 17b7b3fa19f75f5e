"""The backend interface: the only layer that creates, inspects and removes pods and nodes.

The controller decides; a backend carries decisions out on some substrate (local processes
today, Kubernetes Pods later), following torchx's scheduler pattern: one ABC, a lazy registry
by name (`trainguard.backends.get_backend`), and every backend tested by the same contract.
"""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from trainguard.spec.k8s import Container, PodTemplateSpec
from trainguard.store.records import NodeRecord, PodRecord


@dataclass(frozen=True)
class PodLaunch:
    """Everything needed to start one pod of a job on a chosen node."""

    namespace: str
    job: str
    job_uid: str
    pod: str
    node: str
    replica_spec: str
    node_rank: int | None
    spare: bool
    attempt: int
    container: Container
    nproc_per_node: str
    nnodes: int
    token: str
    source_dir: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    template: PodTemplateSpec | None = None
    """The replica group's whole pod template (``container`` is its first container); a
    backend that makes real pods keeps its other fields. None: ``container`` alone."""
    avoid: tuple[str, ...] = ()
    """Nodes the job must not use (repeat offenders); ``node`` is chosen outside them."""
    node_selector: dict[str, str] = field(default_factory=dict)
    """Node labels the job's admission (Kueue's flavors) requires, on top of the template's."""
    tolerations: tuple[dict[str, Any], ...] = ()
    """Tolerations the job's admission adds to the template's (Kubernetes objects)."""

    def running_record(
        self,
        *,
        pid: int,
        port: int,
        now: float,
        host: str = "127.0.0.1",
        info: dict[str, Any] | None = None,
    ) -> PodRecord:
        """The store record of this pod once its process runs at ``pid`` serving ``port``."""
        return PodRecord(
            namespace=self.namespace,
            name=self.pod,
            job=self.job,
            node=self.node,
            replica_spec=self.replica_spec,
            node_rank=self.node_rank,
            spare=self.spare,
            attempt=self.attempt,
            phase="Running",
            host=host,
            port=port,
            pid=pid,
            created_at=now,
            labels=dict(self.labels),
            info=dict(info or {}),
        )


class Backend(ABC):
    """Creates and removes pods on nodes; reports whether they are alive."""

    name: str = "base"

    @abstractmethod
    def create_pod(self, launch: PodLaunch, *, now: float) -> PodRecord:
        """Start the pod and return its record (with pid/port when the backend knows them)."""

    @abstractmethod
    def delete_pod(self, pod: PodRecord, *, grace: float) -> None:
        """Stop the pod: the shutdown signal first, then a kill after ``grace`` seconds."""

    @abstractmethod
    def pod_alive(self, pod: PodRecord) -> bool:
        """Whether the pod's main process is still running."""

    @abstractmethod
    def list_nodes(self) -> list[NodeRecord]:
        """The nodes pods may be placed on."""

    @abstractmethod
    def signal(self, pod: PodRecord, pid: int, sig: signal.Signals) -> None:
        """Send ``sig`` to process ``pid`` inside ``pod`` (fault injection)."""

    def pod_failure(self, pod: PodRecord) -> str | None:
        """Why the pod's container ended or cannot start, in words for a person (exit code,
        termination or waiting reason and message), or None when nothing is known. The
        controller puts it in the fault of a pod lost before its agent became ready."""
        del pod
        return None

    def find_worker(self, pod: PodRecord, rank: int) -> int | None:
        """Pid of the worker with global rank ``rank`` in ``pod``, found in the pod's process
        tree (fault injection, when the agent does not list its workers); None when it is not
        there or this backend cannot look inside pods."""
        del pod, rank
        return None

    @abstractmethod
    def release_job(self, namespace: str, job: str, job_uid: str) -> None:
        """Free what the job held on nodes beyond its pods (shared-memory checkpoints)."""

    def mark_node_health(self, node: str, health: str, *, why: str) -> None:
        """Set ``node``'s health status (``node-health-status``) the way the node health agent
        does, with a ``NodeHealthChanged`` event saying ``why`` (fault injection's
        ``node-unhealthy``); `NotFoundError` for an unknown node."""
        raise NotImplementedError(f"backend {self.name} cannot mark a node's health")

    def free_port(self, host: str) -> int:
        """A port on ``host`` for the job's rendezvous (master) endpoint."""
        raise NotImplementedError(f"backend {self.name} allocates no master ports")

    def step(self, *, now: float) -> None:
        """Advance node lifecycles (reboots, recoveries); called once per controller step."""
        del now
