"""`KubernetesStore`: the `Store` protocol over the Kubernetes API (issue 15).

Jobs are ``HyperPodPyTorchJob`` objects (`store_jobs`), pods are the Pods labelled ``HPJob``,
nodes are Nodes, events are ``events.k8s.io/v1`` Events (`store_objects`), fault requests are
ConfigMaps (`store_faults`), the controller lease is a Lease (`leases`), the agent token is the
job's Secret (`agenttoken`). Every read comes from list+watch caches (`cache.Informer`, one per
kind and watched namespace: `caches`) — a controller step reads hundreds of objects and the
API server sees none of those reads; every write goes to the API server and its answer goes
into the cache at once, so a store reads its own writes. (Two reads are fresh: the Lease,
which fencing must see at once, and a token Secret the status names but the cache lacks.)

**The commit point of a step is its one status write.** Kubernetes has no transaction over
several objects, so `commit_step`:

1. checks what would make the rest fail (the lease, when fenced; the nodes it patches exist)
   before writing anything;
2. writes the job's ``/status`` subresource once — HyperPod's status, the controller's state,
   the new restart rows and the finish time, all in one object — guarded by the
   resourceVersion the job was read at: a 409 is `ConflictError` (another writer won; the
   controller re-reads and retries), a 404 `NotFoundError`; ``spec`` is never touched;
3. only then applies the rest of the step: pod label/annotation patches, pod deletions, node
   patches, events.

If the process dies between 2 and 3, the status says what the step decided and the next step
(of this controller or of a new leader) redoes the idempotent rest: a pod patch or a node patch
sets the same values again, a deleted pod that is still there is deleted again (the controller
compares the status with the Pods it lists). Events of that step can be lost — they are
reports, never inputs. Nothing the controller needs to resume is lost, because everything it
needs is in the status written in step 2.

**Adoption.** A job applied with kubectl has neither our finalizer, nor a ``.status.trainguard``,
nor an agent-token Secret; it reads with a fresh `JobState` whose token the store proposes
(random, the same on every read by this store until it is saved). Its first `commit_step`
adopts it: the finalizer is added by a merge patch guarded by the resourceVersion the step
read (a 409 is `ConflictError` like any concurrent change), and the token goes into the job's
Secret (`agenttoken`) — both before the status write, so a status that exists always has its
finalizer and its Secret. If the backend made the Secret first (it does when the step creates
pods), that Secret's token is the job's from then on, for this store and any other.

**Deletion protocol.** A job created by the store carries the finalizer
``trainguard.io/teardown`` (adoption adds it to jobs applied with kubectl).
`request_deletion` deletes the object; the finalizer keeps it, now with a
``metadata.deletionTimestamp`` (`JobRecord.deletion_requested`), and the controller tears
the job down (agents shut down, node memory released). `remove_job` then deletes the job's
Pods, its Events and fault requests explicitly (so they are gone when it returns, not when the
garbage collector gets to them) and removes the finalizer, letting the API server delete the
object and the garbage collector take whatever else the job owns (Secret, Service).

**Fencing.** After `fence(holder)`, every write first reads the Lease fresh and refuses with
`LeaseLostError` unless it names ``holder``. Unlike SQLite's transaction this check is not
atomic with the write; what closes the gap is the lease protocol itself — a challenger takes
over only after the holder stayed silent for the lease duration, and a holder that sees the
Lease name someone else stops at once (`trainguard.controller.lease`).
"""

from __future__ import annotations

import dataclasses
import logging
import socket
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

from trainguard import constants as c
from trainguard.backends.kubernetes import agenttoken as tokens
from trainguard.backends.kubernetes import store_objects as objs
from trainguard.backends.kubernetes.cache import key_of
from trainguard.backends.kubernetes.caches import cache_for
from trainguard.backends.kubernetes.client import (
    CONFIGMAPS,
    EVENTS,
    JOBS,
    NODES,
    PODS,
    SECRETS,
    KubeClient,
    load_config,
)  # fmt: skip
from trainguard.backends.kubernetes.leases import FencedLease, LeaseKeeper
from trainguard.backends.kubernetes.store_cluster import ClusterObjects, named_errors
from trainguard.backends.kubernetes.store_faults import LABEL_FAULTS, FaultRequests, configmap_name
from trainguard.backends.kubernetes.store_jobs import (
    JobReader,
    Loaded,
    adoption_patch,
    names_token_secret,
    new_object,
    release_patch,
    status_json,
    status_object,
    version,
)
from trainguard.errors import ConflictError, NotFoundError, StoreError
from trainguard.spec.faults import FaultSpec
from trainguard.store.base import StepWrite
from trainguard.store.records import (
    EventRecord,
    FaultOutcome,
    FaultRequest,
    JobRecord,
    RestartRecord,
)  # fmt: skip

log = logging.getLogger(__name__)
TOKEN_BYTES = 32


class KubernetesStore(FencedLease, ClusterObjects):
    """The `Store` over a Kubernetes API server.

    Args:
        client: the API client (closed by `close`).
        namespaces: the namespaces whose jobs, pods, events, Secrets and fault requests are
            kept (one informer per namespace, `caches`); empty: every namespace.
        namespace: one more namespace for ``namespaces`` (the single-namespace shorthand).
        lease_namespace: where the controller Lease and the fault-id counter live (default:
            the kubeconfig's namespace).
        instance: ``reportingInstance`` of our Events (default: this host's name).
        sync_timeout: seconds to wait for the caches' first lists.
    """

    def __init__(
        self,
        client: KubeClient,
        *,
        namespaces: Sequence[str] = (),
        namespace: str | None = None,
        lease_namespace: str | None = None,
        instance: str | None = None,
        sync_timeout: float = 30.0,
    ) -> None:
        self.client = client
        home = lease_namespace or client.namespace
        self.instance = instance or socket.gethostname()
        namespaces = [*namespaces, *([namespace] if namespace else [])]
        self.jobs = cache_for(client, JOBS, namespaces)
        self.pods = cache_for(client, PODS, namespaces, labels={c.LABEL_JOB: None})
        self.nodes = cache_for(client, NODES, ())
        managed = {objs.LABEL_MANAGED_BY: objs.MANAGED_BY}
        node_events = [objs.NODE_EVENTS_NAMESPACE] if namespaces else []
        self.events = cache_for(client, EVENTS, [*namespaces, *node_events], labels=managed)
        fault_maps = cache_for(client, CONFIGMAPS, namespaces, labels={LABEL_FAULTS: None})
        self.faults = FaultRequests(client, fault_maps, namespace=home)
        self.secrets = cache_for(client, SECRETS, namespaces, labels={c.LABEL_JOB: None})
        self.leases = LeaseKeeper(client, home)
        self.informers = (self.jobs, self.pods, self.nodes, self.events, fault_maps, self.secrets)
        self._reader = JobReader()
        self._proposed: dict[str, str] = {}
        """Job uid -> the token proposed for a job that has none yet (module doc)."""
        self._fence: str | None = None
        for informer in self.informers:
            informer.start()
        for informer in self.informers:
            if not informer.wait_synced(sync_timeout):
                self.close()
                raise StoreError(f"the {informer.name} cache did not sync in {sync_timeout} s")

    @classmethod
    def connect(cls, kubeconfig: Path | None, **options: Any) -> KubernetesStore:
        """A store over the cluster of ``kubeconfig`` (None: in-cluster configuration)."""
        return cls(KubeClient(load_config(kubeconfig)), **options)

    def close(self) -> None:
        """Stop the caches and close the connections."""
        for informer in self.informers:
            informer.stop()
        self.client.close()

    # --- jobs ------------------------------------------------------------------------------

    def create_job(
        self, job: JobRecord, *, faults: Sequence[FaultSpec] = (),
        events: Sequence[EventRecord] = (),
    ) -> JobRecord:  # fmt: skip
        """Create the job object, then its token's Secret (a token is made if ``job`` has
        none), status, fault requests and events; if any of those fails the object is deleted
        again. `ConflictError` if a job of that name exists."""
        self._check_fence()
        with named_errors(f"job {job.key}"):
            made = self.client.create(JOBS, new_object(job))
        job.state.token = job.state.token or token_urlsafe(TOKEN_BYTES)
        try:
            self.secrets.remember(tokens.ensure_token_secret(self.client, made, job.state.token))
            done = self._write_status(job, made, job.restarts)
            for spec in faults:
                self.faults.add(job.namespace, job.name, spec, job.created_at, done)
            self._post_events(events)
        except BaseException:
            self._drop_job(job.namespace, job.name)
            raise
        job.uid = done["metadata"]["uid"]
        self._loaded(job, done)
        return job

    def find_job(self, namespace: str, name: str) -> JobRecord | None:
        """The job (with its restart history), or None."""
        obj = self.jobs.get(namespace, name)
        return None if obj is None else self._record(obj)

    def get_job(self, namespace: str, name: str) -> JobRecord:
        """The job; `NotFoundError` if missing."""
        job = self.find_job(namespace, name)
        if job is None:
            raise NotFoundError(f"job {namespace}/{name} not found")
        return job

    def list_jobs(self, namespace: str | None = None) -> list[JobRecord]:
        """All jobs (of one namespace when given), oldest first."""
        found = [self._record(o) for o in self.jobs.items()]
        mine = [j for j in found if namespace is None or j.namespace == namespace]
        return sorted(mine, key=lambda j: (j.created_at, j.name))

    def commit_step(self, job: JobRecord, write: StepWrite) -> bool:
        """Write the status once (the commit point), then the rest of ``write`` (module doc)."""
        loaded = job.loaded if isinstance(job.loaded, Loaded) else None
        unchanged = loaded is not None and (loaded.status, loaded.ours) == status_json(job)
        if write.empty and unchanged and not self._unadopted(job):
            return False
        self._check_fence()
        self._check_nodes(write)
        restarts = [*job.restarts, *write.restarts]
        current = self.jobs.get(job.namespace, job.name) or {"metadata": {}}
        if loaded is not None:
            current = {
                **current,
                "metadata": {**current["metadata"], "resourceVersion": loaded.resource_version},
            }
        current = self._adopt(job, current)
        done = self._write_status(job, current, restarts)
        job.restarts = restarts
        self._loaded(job, done)
        self._apply(write)
        return True

    def _write_status(
        self, job: JobRecord, current: dict[str, Any], restarts: list[RestartRecord]
    ) -> dict[str, Any]:
        meta = current["metadata"]
        body = status_object(
            job, resource_version=meta.get("resourceVersion", ""),
            generation=meta.get("generation"), restarts=restarts,
        )  # fmt: skip
        try:
            done = self.client.replace(JOBS.Status, body)
        except ConflictError as exc:
            raise ConflictError(f"job {job.key} changed concurrently ({exc})") from exc
        except NotFoundError as exc:
            raise NotFoundError(f"job {job.key} not found ({exc})") from exc
        self.jobs.remember(done)
        return done

    def _record(self, obj: dict[str, Any]) -> JobRecord:
        token = tokens.job_token(self.client, self.secrets, obj, expected=names_token_secret(obj))
        uid = obj["metadata"].get("uid", "")
        if not token and uid and not obj["metadata"].get("deletionTimestamp"):
            token = self._proposed.setdefault(uid, token_urlsafe(TOKEN_BYTES))
        return self._reader.record(obj, token=token)

    def _unadopted(self, job: JobRecord) -> bool:
        """Whether the job still lacks our finalizer, its token's Secret, or the status
        naming that Secret (adoption is a change even in a step that changes nothing else)."""
        obj = self.jobs.get(job.namespace, job.name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return False
        cached = self.secrets.get(job.namespace, tokens.secret_name(job.name))
        unsaved = bool(job.state.token) and tokens.secret_token(cached) != job.state.token
        unnamed = bool(job.state.token) and not names_token_secret(obj)
        return adoption_patch(obj) is not None or unsaved or unnamed

    def _adopt(self, job: JobRecord, current: dict[str, Any]) -> dict[str, Any]:
        """Add our finalizer and the token's Secret where missing (module doc); returns the
        job object the status write is guarded by."""
        patch = None if "uid" not in current["metadata"] else adoption_patch(current)
        if patch is not None:
            with named_errors(f"job {job.key}"):
                current = self.client.patch(JOBS, job.name, patch, namespace=job.namespace)
            self.jobs.remember(current)
        token = job.state.token
        cached = self.secrets.get(job.namespace, tokens.secret_name(job.name))
        if token and "uid" in current["metadata"] and tokens.secret_token(cached) != token:
            self.secrets.remember(tokens.ensure_token_secret(self.client, current, token))
        return current

    def _loaded(self, job: JobRecord, done: dict[str, Any]) -> None:
        job.version = version(done["metadata"])
        job.loaded = Loaded(done["metadata"]["resourceVersion"], *status_json(job))

    def _check_nodes(self, write: StepWrite) -> None:
        for patch in write.node_patches:
            if self.nodes.get("", patch.name) is None:
                raise NotFoundError(f"node {patch.name} not found")

    def _apply(self, write: StepWrite) -> None:
        for namespace, name in write.removed_pods:
            self._delete(PODS, self.pods, namespace, name)
        for pod in write.pods:
            try:
                self._save_pod(pod)
            except NotFoundError:  # deleted since the step read it: the next step sees it gone
                log.info("pod %s/%s is gone; its record was not saved", pod.namespace, pod.name)
        for patch in write.node_patches:
            self._patch_node(patch.name, patch.labels, patch.annotations, patch.info)
        self._post_events(write.events)

    def save_job(self, job: JobRecord) -> JobRecord:
        """`commit_step` with nothing but the job (tests and tools); returns ``job``."""
        self.commit_step(job, StepWrite())
        return job

    def request_deletion(self, namespace: str, name: str) -> None:
        """Delete the job object; its finalizer keeps it, marked, for the controller."""
        self._check_fence()
        with named_errors(f"job {namespace}/{name}"):
            self.client.delete(JOBS, name, namespace=namespace)
        try:  # the marked object (or none: it had no finalizer)
            self.jobs.remember(self.client.get(JOBS, name, namespace=namespace))
        except NotFoundError:
            self.jobs.forget(namespace, name)

    def remove_job(self, namespace: str, name: str) -> None:
        """Delete the job's pods, events and fault requests, then let the object go."""
        self._check_fence()
        for pod in self.list_pods(namespace, name):
            self._delete(PODS, self.pods, namespace, pod.name)
        for event in self.events.items():
            regarding = event.get("regarding") or {}
            if (regarding.get("kind"), regarding.get("namespace"), regarding.get("name")) == (
                c.KIND, namespace, name,
            ):  # fmt: skip
                self._delete(EVENTS, self.events, *key_of(event))
        self._delete(CONFIGMAPS, self.faults.cache, namespace, configmap_name(name))
        self._delete(SECRETS, self.secrets, namespace, tokens.secret_name(name))
        self._drop_job(namespace, name)

    def _drop_job(self, namespace: str, name: str) -> None:
        """Delete the job object and remove our finalizer: the object is gone after this."""
        try:
            self.client.delete(JOBS, name, namespace=namespace)
            for _ in range(3):  # guarded: another controller's finalizer is never dropped
                meta = self.client.get(JOBS, name, namespace=namespace)["metadata"]
                with suppress(ConflictError):
                    self.client.patch(JOBS, name, release_patch(meta), namespace=namespace)
                    break
            self._reader.forget(meta.get("uid", ""))
            self._proposed.pop(meta.get("uid", ""), None)
        except NotFoundError:
            pass
        self.jobs.forget(namespace, name)

    def list_restarts(self, namespace: str, job: str) -> list[RestartRecord]:
        """Restarts of a job, oldest first (``.status.trainguard.restarts``)."""
        found = self.find_job(namespace, job)
        return [] if found is None else list(found.restarts)

    # --- fault requests --------------------------------------------------------------------

    def add_fault_request(self, namespace: str, job: str, spec: FaultSpec, now: float) -> int:
        """Queue a fault in the job's fault ConfigMap; returns its id."""
        self._check_fence()
        return self.faults.add(namespace, job, spec, now, self.jobs.get(namespace, job))

    def pending_fault_requests(self) -> list[FaultRequest]:
        """Faults not injected (nor given up on) yet, oldest first."""
        return [r for r in self.faults.all() if r.outcome is FaultOutcome.PENDING]

    def list_fault_requests(self, namespace: str, job: str) -> list[FaultRequest]:
        """Every fault request of a job with its outcome, oldest first."""
        return self.faults.of_job(namespace, job)

    def get_fault_request(self, request_id: int) -> FaultRequest:
        """One fault request; `NotFoundError` if missing."""
        return self.faults.get(request_id)

    def complete_fault_request(
        self, request_id: int, *, outcome: FaultOutcome, result: str, now: float
    ) -> None:
        """Record a pending request's outcome; decided ones stay as they are."""
        self._check_fence()
        self.faults.update_pending(
            request_id,
            lambda r: dataclasses.replace(r, done_at=now, result=result, outcome=outcome),
        )

    def note_fault_training(
        self, request_id: int, *, training_at: float | None, reported_step: int | None
    ) -> None:
        """Record a pending request's timing facts; decided ones stay as they are."""
        self._check_fence()
        self.faults.update_pending(
            request_id,
            lambda r: dataclasses.replace(r, training_at=training_at, reported_step=reported_step),
        )
