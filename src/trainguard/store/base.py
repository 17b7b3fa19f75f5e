"""The `Store` protocol: the one seam between trainguard and where its state lives.

The controller, the CLI, the health agent's node sink and the testing fakes are typed against
`Store`; only composition roots (CLI commands, the local cluster) name an implementation
(`SqliteStore` today; the Kubernetes store — custom-resource status plus Events — next).

Why a `typing.Protocol` and not an ABC: implementations share no code (SQL rows vs API
objects), so a base class would hold nothing but abstract methods; a protocol lets the
Kubernetes store and test doubles conform structurally, and mypy checks every caller and every
implementation against the same method list. The list is kept small: jobs, pods, nodes,
events, restart history, fault requests, the leader lease.

A controller step writes through `commit_step` only: the job's status and state, the restart
rows, pod upserts and removals, node patches and events of one step land in one atomic write,
guarded by the job's version (`ConflictError`) and the lease fence (`LeaseLostError`) — or not
at all. The step gathers them in a `StepWrite`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from trainguard.spec.faults import FaultSpec
from trainguard.store.records import (
    EventRecord,
    FaultOutcome,
    FaultRequest,
    JobRecord,
    Lease,
    NodeRecord,
    PodRecord,
    RestartRecord,
)


@dataclass(frozen=True)
class NodePatch:
    """Labels/annotations/info keys of a node to set (or, with None, delete)."""

    name: str
    labels: Mapping[str, str | None] = field(default_factory=dict)
    annotations: Mapping[str, str | None] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class StepWrite:
    """Everything one controller step writes besides the job's status and state.

    Pod processes are started and killed by the backend during the step (effects that cannot
    be rolled back); their *rows* land here, with the step. When the write is refused, the
    caller cleans up what it launched (`launched`) so no process is left without a row.
    """

    restarts: list[RestartRecord] = field(default_factory=list)
    pods: list[PodRecord] = field(default_factory=list)
    """Pods to insert or replace (new pods, promoted spares)."""
    removed_pods: list[tuple[str, str]] = field(default_factory=list)
    """``(namespace, name)`` of pods whose processes the step deleted."""
    node_patches: list[NodePatch] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    launched: list[PodRecord] = field(default_factory=list)
    """Pods whose processes this step started (not written: for cleanup on refusal)."""

    def save_pod(self, pod: PodRecord) -> None:
        """Upsert ``pod`` with the step (a later upsert of the same pod replaces it)."""
        self.pods = [p for p in self.pods if (p.namespace, p.name) != (pod.namespace, pod.name)]
        self.pods.append(pod)

    def remove_pod(self, namespace: str, name: str) -> None:
        """Forget pod ``name`` with the step (and drop an upsert of it from this step)."""
        self.pods = [p for p in self.pods if (p.namespace, p.name) != (namespace, name)]
        self.removed_pods.append((namespace, name))

    @property
    def empty(self) -> bool:
        """Nothing but (maybe) the job's status and state to write."""
        return not (
            self.restarts or self.pods or self.removed_pods or self.node_patches or self.events
        )


class Store(Protocol):
    """Persistence of jobs, pods, nodes, events, restart history, fault requests, the lease.

    Errors: `NotFoundError` for a missing object where one is required, `ConflictError` for a
    version mismatch or a duplicate, `LeaseLostError` for a fenced write after the lease moved.
    """

    # --- jobs ------------------------------------------------------------------------------

    def create_job(
        self,
        job: JobRecord,
        *,
        faults: Sequence[FaultSpec] = (),
        events: Sequence[EventRecord] = (),
    ) -> JobRecord:
        """Insert a new job with its fault requests and events, atomically.

        Raises:
            ConflictError: a job of that name exists.
        """
        ...

    def find_job(self, namespace: str, name: str) -> JobRecord | None:
        """The job (with its restart history), or None."""
        ...

    def get_job(self, namespace: str, name: str) -> JobRecord:
        """The job; `NotFoundError` if missing."""
        ...

    def list_jobs(self, namespace: str | None = None) -> list[JobRecord]:
        """All jobs (of one namespace when given), oldest first, with their restart history."""
        ...

    def commit_step(self, job: JobRecord, write: StepWrite) -> bool:
        """Write ``job``'s status, state and finish time with ``write``, all or nothing.

        Skipped (returns False) when the status and state are unchanged since the job was read
        and ``write`` is empty. On success the job's version is bumped and ``write.restarts``
        join ``job.restarts``.

        Raises:
            ConflictError: the job changed since it was read (another writer won).
            NotFoundError: the job was removed.
            LeaseLostError: the store is fenced and its holder lost the lease.
        """
        ...

    def request_deletion(self, namespace: str, name: str) -> None:
        """Mark a job for deletion; the controller tears it down."""
        ...

    def set_suspend(self, namespace: str, name: str, *, suspend: bool) -> None:
        """Set the job's ``spec.runPolicy.suspend``, the one spec field a running job may
        change (the controller stops or resumes its pods)."""
        ...

    def remove_job(self, namespace: str, name: str) -> None:
        """Delete a job with its pods, events, restarts and fault requests."""
        ...

    def list_restarts(self, namespace: str, job: str) -> list[RestartRecord]:
        """Restarts of a job, oldest first."""
        ...

    # --- pods and nodes (the backend's bookkeeping) -----------------------------------------

    def save_pod(self, pod: PodRecord) -> None:
        """Insert or replace a pod (backends; the controller writes pods via `commit_step`)."""
        ...

    def list_pods(self, namespace: str | None = None, job: str | None = None) -> list[PodRecord]:
        """Pods, of one job when ``job`` is given, in creation order."""
        ...

    def save_node(self, node: NodeRecord) -> None:
        """Insert or replace a node."""
        ...

    def find_node(self, name: str) -> NodeRecord | None:
        """The node, or None."""
        ...

    def get_node(self, name: str) -> NodeRecord:
        """The node; `NotFoundError` if missing."""
        ...

    def list_nodes(self) -> list[NodeRecord]:
        """All nodes, by name."""
        ...

    def patch_node(
        self,
        name: str,
        *,
        labels: Mapping[str, str | None] | None = None,
        annotations: Mapping[str, str | None] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> NodeRecord:
        """Set (or, with None, delete) labels/annotations/info keys of a node atomically."""
        ...

    def remove_node(self, name: str) -> None:
        """Forget a node."""
        ...

    # --- events ----------------------------------------------------------------------------

    def add_events(self, events: list[EventRecord]) -> None:
        """Append events."""
        ...

    def list_events(
        self, *, kind: str | None = None, namespace: str | None = None, name: str | None = None
    ) -> list[EventRecord]:
        """Events in time order, filtered by object when given."""
        ...

    # --- fault requests --------------------------------------------------------------------

    def add_fault_request(self, namespace: str, job: str, spec: FaultSpec, now: float) -> int:
        """Queue a fault for the controller to inject; returns its id."""
        ...

    def pending_fault_requests(self) -> list[FaultRequest]:
        """Faults not injected (nor given up on) yet, oldest first."""
        ...

    def list_fault_requests(self, namespace: str, job: str) -> list[FaultRequest]:
        """Every fault request of a job with its outcome, oldest first."""
        ...

    def get_fault_request(self, request_id: int) -> FaultRequest:
        """One fault request; `NotFoundError` if missing."""
        ...

    def complete_fault_request(
        self, request_id: int, *, outcome: FaultOutcome, result: str, now: float
    ) -> None:
        """Record a pending request's outcome; decided ones stay as they are."""
        ...

    def note_fault_training(
        self, request_id: int, *, training_at: float | None, reported_step: int | None
    ) -> None:
        """Record when a pending request's job was first seen training and its newest
        reported step (the injector's timing facts); decided requests stay as they are."""
        ...

    # --- the leader lease ------------------------------------------------------------------

    def current_lease(self) -> Lease | None:
        """The controller lease, if any."""
        ...

    def take_lease(self, lease: Lease, *, expect: tuple[str, int] | None) -> Lease | None:
        """Compare-and-swap the lease on ``expect`` = ``(holder, renewals)`` (None: no lease);
        returns the lease written (renewals counted by the store) or None."""
        ...

    def release_lease(self, holder: str) -> None:
        """Drop the lease if ``holder`` has it."""
        ...

    def fence(self, holder: str | None) -> None:
        """Refuse every later write unless ``holder`` holds the lease (None: stop fencing)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
