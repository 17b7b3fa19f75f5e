"""The Kubernetes backend: a job's pods as Pods, its nodes as the cluster's Nodes.

The controller's decisions become API calls; placement stays with the Kubernetes scheduler
(the pod carries required affinity for healthy, not-avoided nodes and the controller's choice
as a preference, `trainguard.backends.kubernetes.podspec`). What the controller reads back —
a pod's IP, phase and node — comes from the store's view of the Pod objects, not from
`create_pod`: a pod has no IP until it is scheduled and started, and the controller's ready
timeout covers that wait. With ``PodRecord.host`` = the pod IP, the rank-0 pod's IP becomes
the job's master address (no DNS name that might not resolve yet).

Per job the backend also keeps a Secret with the agents' token (made by
`agenttoken.ensure_token_secret`, the one function the store uses too) and a headless Service,
both owned by the job. Processes in a pod are signalled through the agent's authenticated
``/trainguard/signal`` route: the operator has no ``pods/exec``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import signal
import threading
from collections.abc import Callable
from typing import Any

import httpx
from lightkube.resources.core_v1 import Secret, Service

from trainguard import constants as c
from trainguard.backends.base import Backend, PodLaunch
from trainguard.backends.kubernetes import agenttoken, jobobjects
from trainguard.backends.kubernetes.client import EVENTS, NODES, PODS, KubeClient
from trainguard.backends.kubernetes.events import node_event
from trainguard.backends.kubernetes.nodes import node_record
from trainguard.backends.kubernetes.podfailure import pod_failure
from trainguard.backends.kubernetes.podspec import pod_labels, pod_manifest
from trainguard.backends.kubernetes.reader import ClientReader, ObjectReader
from trainguard.backends.kubernetes.terminations import to_force
from trainguard.clock import Clock, SystemClock
from trainguard.errors import BackendError, ConflictError, NotFoundError, UsageError
from trainguard.store.records import NodeRecord, PodRecord

MASTER_PORTS = range(29500, 29600)
"""Rendezvous ports handed out in turn, one per `free_port` call (see there)."""
SIGNAL_TIMEOUT = 10.0
GONE_PHASES = frozenset({"Succeeded", "Failed"})

log = logging.getLogger(__name__)


class KubernetesBackend(Backend):
    """Pods, Secrets, Services and Node labels over the Kubernetes API.

    Args:
        client: the API client (its field manager names the operator).
        reader: where Pods, Nodes and Secrets are read (the operator's cache); the API
            itself when omitted.
        clock: time for grace periods and event stamps.
    """

    name = "kubernetes"

    def __init__(
        self, *, client: KubeClient, reader: ObjectReader | None = None, clock: Clock | None = None
    ) -> None:
        self.client = client
        self.reader = reader or ClientReader(client)
        self.clock = clock or SystemClock()
        self._tokens: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()  # PodMaker asks for ports from a thread pool
        self._ports = itertools.cycle(MASTER_PORTS)

    # --- pods ------------------------------------------------------------------------------

    def create_pod(self, launch: PodLaunch, *, now: float) -> PodRecord:
        """Ensure the job's Secret and Service, create the Pod; its IP comes later."""
        self._ensure_job_objects(launch)
        manifest = pod_manifest(launch)
        try:
            created = self.client.create(PODS, manifest)
        except ConflictError:
            created = self._adoptable(launch, manifest["metadata"]["name"])
        return _pending_record(launch, created, now=now)

    def _adoptable(self, launch: PodLaunch, name: str) -> dict[str, Any]:
        """The pod of this name a crashed step left behind, if it is this launch's own."""
        existing = self.reader.pod(launch.namespace, name)
        if existing is None:
            raise BackendError(f"pod {name} existed a moment ago and is gone now")
        terminating = (existing.get("metadata") or {}).get("deletionTimestamp")
        if terminating or not jobobjects.owned_by(existing, launch.job_uid):
            why = "is terminating" if terminating else "belongs to another object"
            raise BackendError(f"pod {name} already exists and {why}")
        return existing

    def delete_pod(self, pod: PodRecord, *, grace: float) -> None:
        """Delete with ``grace`` seconds; `step` forces it once they are over if the pod's
        node is lost."""
        self._delete(PODS, pod.name, pod.namespace, grace=max(0, math.ceil(grace)))

    def pod_alive(self, pod: PodRecord) -> bool:
        """The Pod exists and has not ended (phase neither Succeeded nor Failed)."""
        found = self.reader.pod(pod.namespace, pod.name)
        if found is None:
            return False
        return (found.get("status") or {}).get("phase") not in GONE_PHASES

    def pod_failure(self, pod: PodRecord) -> str | None:
        """What the Pod's status says went wrong (`podfailure.pod_failure`); "deleted" when
        the Pod is gone."""
        found = self.reader.pod(pod.namespace, pod.name)
        return "the Pod was deleted" if found is None else pod_failure(found)

    def signal(self, pod: PodRecord, pid: int, sig: signal.Signals) -> None:
        """Ask the pod's agent to signal ``pid`` (only its own processes; 403 otherwise)."""
        if pod.url is None:
            raise BackendError(f"pod {pod.name} has no IP yet; cannot signal process {pid}")
        token = self._token(pod.namespace, pod.job)
        try:
            response = httpx.post(
                pod.url + c.AGENT_SIGNAL_PATH,
                json={"pid": pid, "signal": sig.name},
                headers={"Authorization": f"Bearer {token}"},
                timeout=SIGNAL_TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise BackendError(f"agent of pod {pod.name} unreachable: {exc}") from exc
        if response.status_code == 403:
            raise BackendError(f"process {pid} does not belong to pod {pod.name}")
        if response.is_error:
            raise BackendError(
                f"agent of pod {pod.name} refused {sig.name} to {pid}: "
                f"{response.status_code} {response.text[:200]}"
            )

    # --- nodes -----------------------------------------------------------------------------

    def list_nodes(self) -> list[NodeRecord]:
        """The cluster's Nodes, Kubernetes node faults folded into the health label."""
        return [node_record(node) for node in self.reader.nodes()]

    def mark_node_health(self, node: str, health: str, *, why: str) -> None:
        """Label the Node as the node health agent would, with a ``NodeHealthChanged`` event."""
        if health not in c.HEALTH_STATUSES:
            raise UsageError(f"health must be one of {', '.join(c.HEALTH_STATUSES)}: {health!r}")
        self.client.patch(NODES, node, {"metadata": {"labels": {c.LABEL_NODE_HEALTH: health}}})
        self.client.create(EVENTS, node_event(node, health=health, why=why, now=self.clock.wall()))

    def free_port(self, host: str) -> int:
        """The next port of `MASTER_PORTS`, whatever ``host`` is.

        Every pod has its own IP (and network namespace), so no other pod's process can hold
        the port on the rank-0 pod's address, and the backend cannot look inside the pod to
        probe it anyway. The port still changes with every call, so a restart never reuses
        the previous rendezvous endpoint (DESIGN §2: restarted workers reading a stale store
        fail or hang); the range wraps after 100 restarts.
        """
        del host
        with self._lock:
            return next(self._ports)

    # --- job-wide objects ------------------------------------------------------------------

    def release_job(self, namespace: str, job: str, job_uid: str) -> None:
        """Delete the job's pods, Secret and Service (idempotent; the job's ownerReferences
        would make the garbage collector do the same, later). The node-local memory is each
        pod's ``emptyDir`` and goes with the pod."""
        pods, _ = self.client.list(PODS, namespace=namespace, labels={c.LABEL_JOB: job})
        for pod in pods:
            if jobobjects.owned_by(pod, job_uid):
                self._delete(PODS, pod["metadata"]["name"], namespace, grace=None)
        for kind, name in ((Secret, agenttoken.secret_name(job)), (Service, job)):
            found = self._get(kind, name, namespace)
            if found is not None and jobobjects.owned_by(found, job_uid):
                self._delete(kind, name, namespace, grace=None)
        self._tokens.pop((namespace, job), None)

    def step(self, *, now: float) -> None:
        """Force-delete pods whose grace period is over and whose node is lost
        (`terminations`: read from the pods' ``deletionTimestamp``, so it survives a restart)."""
        nodes = {str(n["metadata"]["name"]): n for n in self.reader.nodes()}
        for pod in to_force(self.reader.pods(), nodes=nodes, now=now):
            meta = pod["metadata"]
            log.info("force-deleting pod %s/%s: its node is lost", meta["namespace"], meta["name"])
            self._delete(PODS, meta["name"], meta["namespace"], grace=0)

    def _ensure_job_objects(self, launch: PodLaunch) -> None:
        key = (launch.namespace, launch.job)
        if self._tokens.get(key) == launch.token:
            return
        uid = launch.job_uid
        agenttoken.ensure_token_secret(self.client, jobobjects.job_object(launch), launch.token)
        if jobobjects.service_name_ok(launch.job):
            service = jobobjects.headless_service(launch)
            self._ensure(Service, service, keep=lambda found: jobobjects.owned_by(found, uid))
        self._tokens[key] = launch.token

    def _ensure(
        self, kind: Any, manifest: dict[str, Any], *, keep: Callable[[dict[str, Any]], bool]
    ) -> None:
        """Create ``manifest``; an object of its name that ``keep`` refuses (left by an older
        job of the same name, or holding an older token) is replaced."""
        name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
        try:
            self.client.create(kind, manifest)
            return
        except ConflictError:
            existing = self._get(kind, name, namespace)
            if existing is not None and keep(existing):
                return
        self._delete(kind, name, namespace, grace=None)
        self.client.create(kind, manifest)

    def _token(self, namespace: str, job: str) -> str:
        token = self._tokens.get((namespace, job))
        if token is not None:
            return token
        name = agenttoken.secret_name(job)
        token = agenttoken.secret_token(self.reader.secret(namespace, name))
        if token is None:
            raise BackendError(f"secret {name} holds no {agenttoken.TOKEN_KEY!r}")
        return token

    # --- API calls -------------------------------------------------------------------------

    def _get(self, kind: Any, name: str, namespace: str) -> dict[str, Any] | None:
        try:
            return self.client.get(kind, name, namespace=namespace)
        except NotFoundError:
            return None

    def _delete(self, kind: Any, name: str, namespace: str, *, grace: int | None) -> None:
        with contextlib.suppress(NotFoundError):
            self.client.delete(kind, name, namespace=namespace, grace=grace)


def _pending_record(launch: PodLaunch, pod: dict[str, Any], *, now: float) -> PodRecord:
    """The record of a pod just created: no IP or port until the store sees it running."""
    metadata = pod.get("metadata") or {}
    return PodRecord(
        namespace=launch.namespace,
        name=str(metadata.get("name")),
        job=launch.job,
        node=(pod.get("spec") or {}).get("nodeName") or launch.node,
        replica_spec=launch.replica_spec,
        node_rank=launch.node_rank,
        spare=launch.spare,
        attempt=launch.attempt,
        phase=(pod.get("status") or {}).get("phase") or "Pending",
        host="",
        port=None,
        created_at=now,
        labels=dict(metadata.get("labels") or pod_labels(launch)),
        info={"uid": metadata.get("uid"), "nodeHint": launch.node},
    )
