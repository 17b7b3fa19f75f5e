"""`KueueGate`: the admission gate of a job in a Kueue queue, through its Workload.

The controller asks `admission` every step of a job that is not finished. A job without the
``kueue.x-k8s.io/queue-name`` label is admitted at once with no API call. For a queued job
the gate reads its Workload (creating it the first time, `workload.workload_manifest`) and
turns Kueue's status into an `Admission` (`workload.admission_of`), reading the assigned
ResourceFlavors for their node labels and tolerations. The other two calls are the job
framework's part of Kueue's protocol: `released` — the evicted job's pods are gone — clears
``status.admission`` and sets ``QuotaReserved=False``, so Kueue counts the quota free and
queues the Workload again; `finished` sets ``Finished=True`` (reason ``Succeeded`` or
``Failed``), so the quota goes to the next job.

Reads come from list+watch caches, as the rest of the operator's do (`caches.cache_for`): our
Workloads (labelled with their job's uid) in the watched namespaces, and the ResourceFlavors;
a step of a queued job sends no request unless it writes. The caches start with the first
queued job, so an operator on a cluster without Kueue never lists Workloads; until they have
synced the job waits (reason ``WaitingForKueueCache``). Writes go into the cache at once, so
the next step reads them. Only a Workload's creation GETs its WorkloadPriorityClass, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from lightkube.generic_resource import create_global_resource, create_namespaced_resource

from trainguard import constants as c
from trainguard.backends.gate import OPEN, Admission, AdmissionGate
from trainguard.backends.kubernetes import workload as wl
from trainguard.backends.kubernetes.caches import ObjectCache, cache_for
from trainguard.backends.kubernetes.client import KubeClient
from trainguard.errors import ConflictError, NotFoundError
from trainguard.store.records import JobRecord

WORKLOADS: Any = create_namespaced_resource(c.KUEUE_GROUP, c.KUEUE_VERSION, "Workload", "workloads")
RESOURCE_FLAVORS: Any = create_global_resource(
    c.KUEUE_GROUP, c.KUEUE_VERSION, "ResourceFlavor", "resourceflavors"
)
PRIORITY_CLASSES: Any = create_global_resource(
    c.KUEUE_GROUP, c.KUEUE_VERSION, "WorkloadPriorityClass", "workloadpriorityclasses"
)
Manifest = dict[str, Any]


class KueueGate(AdmissionGate):
    """Workloads for queued jobs (see the module docstring).

    Args:
        client: the operator's API client.
        namespaces: the namespaces whose jobs the operator reconciles (empty: every one).
        sync_timeout: seconds the first queued job's step waits for the caches' first lists.
    """

    def __init__(
        self, client: KubeClient, *, namespaces: Sequence[str] = (), sync_timeout: float = 10.0
    ) -> None:
        self.client = client
        self.namespaces = tuple(namespaces)
        self.sync_timeout = sync_timeout
        self.workloads: ObjectCache | None = None
        """The cache of our Workloads; None until the first queued job."""
        self.flavors: ObjectCache | None = None
        """The cache of ResourceFlavors; None until the first queued job."""

    def admission(self, job: JobRecord, *, now: float) -> Admission:
        """Admitted, waiting or evicted, as the job's Workload says (created when missing)."""
        del now
        queue = wl.queue_name(job.job)
        if queue is None:
            return OPEN
        if not self._synced():
            why = "the Workload and ResourceFlavor caches have not listed yet (is Kueue installed?)"
            return Admission(False, "WaitingForKueueCache", why)
        found = self._workload(job)
        if found is None:
            missing = self._create(job, queue)
            if missing is not None:
                return missing
            return Admission(False, "Pending", f"Workload created in LocalQueue {queue}")
        assert self.flavors is not None
        flavors = {n: self.flavors.get("", n) for n in wl.flavor_names(found)}
        lacking = sorted(name for name, flavor in flavors.items() if flavor is None)
        if lacking:
            return Admission(False, "FlavorNotFound", f"no ResourceFlavor {', '.join(lacking)}")
        return wl.admission_of(found, {n: f for n, f in flavors.items() if f is not None})

    def close(self) -> None:
        """Stop the caches (if they were started)."""
        for cache in (self.workloads, self.flavors):
            if cache is not None:
                cache.stop()

    def released(self, job: JobRecord, *, now: float) -> None:
        """Give an evicted Workload's quota back: no admission, ``QuotaReserved=False``."""

        def change(found: Manifest) -> Manifest | None:
            if (found.get("status") or {}).get("admission") is None:
                return None
            conditions = list((found.get("status") or {}).get("conditions") or [])
            message = "The job's pods were stopped; waiting to be admitted again"
            for kind in (wl.QUOTA_RESERVED, wl.ADMITTED):
                conditions = wl.with_condition(
                    conditions, kind, "False", "Pending", message, now=now
                )
            return {"admission": None, "conditions": conditions}

        self._update_status(job, change)

    def finished(self, job: JobRecord, *, succeeded: bool, message: str, now: float) -> None:
        """Mark the Workload ``Finished`` (``Succeeded``/``Failed``)."""

        def change(found: Manifest) -> Manifest | None:
            if wl.is_true(found, wl.FINISHED):
                return None
            reason = "Succeeded" if succeeded else "Failed"
            conditions = list((found.get("status") or {}).get("conditions") or [])
            conditions = wl.with_condition(
                conditions, wl.FINISHED, "True", reason, message, now=now
            )
            return {"conditions": conditions}

        self._update_status(job, change)

    def _synced(self) -> bool:
        """Start the caches at the first queued job; whether both have listed."""
        if self.workloads is None or self.flavors is None:
            mine = {c.LABEL_KUEUE_JOB_UID: None}
            self.workloads = cache_for(self.client, WORKLOADS, self.namespaces, labels=mine)
            self.flavors = cache_for(self.client, RESOURCE_FLAVORS, ())
            self.workloads.start()
            self.flavors.start()
            timeout: float = self.sync_timeout
        else:
            timeout = 0.0
        deadline = time.monotonic() + timeout
        return self.workloads.wait_synced(timeout) and self.flavors.wait_synced(
            max(0.0, deadline - time.monotonic())
        )

    def _workload(self, job: JobRecord) -> Manifest | None:
        if wl.queue_name(job.job) is None or not self._synced():
            return None
        assert self.workloads is not None
        return self.workloads.get(job.namespace, wl.workload_name(job.name, job.uid))

    def _create(self, job: JobRecord, queue: str) -> Admission | None:
        """Create the Workload; an `Admission` saying why not when its priority class is
        missing (the job waits, as Kueue's own integrations do)."""
        priority: int | None = None
        name = wl.priority_class(job.job)
        if name is not None:
            try:
                priority = int(self.client.get(PRIORITY_CLASSES, name).get("value") or 0)
            except NotFoundError:
                why = f"label {c.LABEL_KUEUE_PRIORITY}: no WorkloadPriorityClass {name!r}"
                return Admission(False, "PriorityClassNotFound", why)
        manifest = wl.workload_manifest(job.job, uid=job.uid, queue=queue, priority=priority)
        try:
            self._remember(self.client.create(WORKLOADS, manifest))
        except ConflictError:  # made before our cache saw it (a previous leader's create)
            self._fetch(job.namespace, manifest["metadata"]["name"])
        return None

    def _update_status(self, job: JobRecord, change: Callable[[Manifest], Manifest | None]) -> None:
        """Patch the Workload's status with ``change(workload)`` (None: nothing to change),
        guarded by its resourceVersion. A conflict means our cached copy was behind (Kueue
        wrote since): read it once from the API and try again."""
        found = self._workload(job)
        for attempt in range(2):
            status = None if found is None else change(found)
            if found is None or status is None:
                return
            meta = found["metadata"]
            patch = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status}
            try:
                written = self.client.patch(
                    WORKLOADS.Status, meta["name"], patch, namespace=meta["namespace"]
                )
            except ConflictError:
                if attempt:
                    raise
                found = self._fetch(meta["namespace"], meta["name"])
                continue
            self._remember(written)
            return

    def _fetch(self, namespace: str, name: str) -> Manifest | None:
        """The Workload from the API (into the cache), or None."""
        try:
            found = self.client.get(WORKLOADS, name, namespace=namespace)
        except NotFoundError:
            return None
        self._remember(found)
        return found

    def _remember(self, written: Manifest) -> None:
        """The server's answer to our write, into the cache: the next step reads it."""
        if self.workloads is not None:
            self.workloads.remember(written)
