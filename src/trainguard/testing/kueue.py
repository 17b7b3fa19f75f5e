"""`AdmissionSimulator`: Kueue's scheduler in miniature, over the fake API server.

Tests of task governance need something that admits and evicts Workloads the way Kueue does,
without running Kueue: one ClusterQueue with a quota of ``quota_pods`` pods and one
ResourceFlavor. Each `step` reads every Workload and

- admits pending ones in order (highest ``spec.priority`` first, then the oldest) while their
  pod count fits in the free quota: ``status.admission`` (the ClusterQueue, one
  ``podSetAssignments`` entry per pod set with the flavor and count) and the conditions
  ``QuotaReserved`` and ``Admitted`` True (``Evicted``/``Preempted`` back to False);
- when the head of the queue does not fit, evicts admitted Workloads of lower priority (the
  lowest, newest first) until it would: ``Evicted=True`` reason ``Preempted`` and
  ``Preempted=True`` reason ``InClusterQueue``. Their quota stays taken until the job's
  controller has stopped the pods and cleared ``status.admission`` (Kueue's job framework
  protocol) — only then is the head admitted (strict FIFO: nothing behind it overtakes it);
- ignores Workloads whose ``Finished`` condition is True and those with ``spec.active`` false.

Not simulated: cohorts, borrowing, resource quotas other than a pod count, admission checks,
partial admission, LocalQueue objects (``spec.queueName`` is taken as it is).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from trainguard import constants as c
from trainguard.testing.kube.restclient import ApiError, KubeClient
from trainguard.testing.kueuecrds import KUEUE_CRDS

JSON = dict[str, Any]
API = f"/apis/{c.KUEUE_GROUP}/{c.KUEUE_VERSION}"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
STAMP = "%Y-%m-%dT%H:%M:%SZ"


class AdmissionSimulator:
    """One ClusterQueue of ``quota_pods`` pods (module docstring).

    Args:
        url: the API server.
        token: its bearer token.
        quota_pods: pods the ClusterQueue may admit at once.
        flavor: the ResourceFlavor every admission assigns.
        node_labels: the flavor's ``spec.nodeLabels`` (admitted pods must land on such nodes).
        tolerations: the flavor's ``spec.tolerations``.
        cluster_queue: the ClusterQueue's name in ``status.admission``.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        quota_pods: int,
        flavor: str = "default-flavor",
        node_labels: Mapping[str, str] | None = None,
        tolerations: list[JSON] | None = None,
        cluster_queue: str = "cluster-queue",
    ) -> None:
        if quota_pods < 1:
            raise ValueError(f"quota_pods: {quota_pods} is not a positive pod count")
        self.client = KubeClient(url, token)
        self.quota_pods, self.flavor, self.cluster_queue = quota_pods, flavor, cluster_queue
        self.node_labels = dict(node_labels or {})
        self.tolerations = list(tolerations or [])
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- setup ---------------------------------------------------------------------------------

    def install(self, *, timeout: float = 10.0) -> None:
        """Apply the Kueue CRDs and create the ResourceFlavor (existing ones are kept)."""
        for crd in KUEUE_CRDS:
            _create(self.client, CRD_PATH, crd)
        deadline = time.monotonic() + timeout
        while self.client.get(f"{API}/resourceflavors") is None:
            if time.monotonic() > deadline:
                raise TimeoutError("the Kueue CRDs are not served")
            time.sleep(0.05)
        flavor = {
            "apiVersion": c.KUEUE_API_VERSION, "kind": "ResourceFlavor",
            "metadata": {"name": self.flavor},
            "spec": {"nodeLabels": self.node_labels, "tolerations": self.tolerations},
        }  # fmt: skip
        _create(self.client, f"{API}/resourceflavors", flavor)

    def add_priority_class(self, name: str, value: int) -> None:
        """Create a WorkloadPriorityClass (``value``: higher is more important)."""
        body = {"apiVersion": c.KUEUE_API_VERSION, "kind": "WorkloadPriorityClass",
                "metadata": {"name": name}, "value": value}  # fmt: skip
        _create(self.client, f"{API}/workloadpriorityclasses", body)

    # --- the scheduler -------------------------------------------------------------------------

    def step(self, *, now: float | None = None) -> None:
        """Admit and evict once (module docstring)."""
        stamp = time.strftime(STAMP, time.gmtime(now if now is not None else time.time()))
        workloads = [w for w in self._workloads() if _queued(w)]
        admitted = [w for w in workloads if _admission(w) is not None]
        free = self.quota_pods - sum(pod_count(w) for w in admitted)
        for head in sorted((w for w in workloads if _admission(w) is None), key=_order):
            need = pod_count(head)
            if need > self.quota_pods:
                continue  # never fits: Kueue leaves it pending as well
            if need <= free:
                self._admit(head, stamp)
                free -= need
                continue
            self._preempt_for(head, admitted, need - free, stamp)
            return

    def _preempt_for(self, head: JSON, admitted: list[JSON], short: int, stamp: str) -> None:
        if any(_true(w, "Evicted") for w in admitted):
            return  # evictions under way: wait for their quota
        lower = [w for w in admitted if _priority(w) < _priority(head)]
        victims: list[JSON] = []
        newest_first = sorted(lower, key=_created, reverse=True)
        for victim in sorted(newest_first, key=_priority):  # stable: lowest, then newest
            if short <= 0:
                break
            victims.append(victim)
            short -= pod_count(victim)
        if short > 0:
            return
        for victim in victims:
            why = f"Preempted to accommodate {_name(head)} (priority {_priority(head)})"
            conditions = _set(_conditions(victim), "Evicted", "True", "Preempted", why, stamp=stamp)
            conditions = _set(conditions, "Preempted", "True", "InClusterQueue", why, stamp=stamp)
            self._write_status(victim, conditions=conditions)

    def _admit(self, workload: JSON, stamp: str) -> None:
        admission = {
            "clusterQueue": self.cluster_queue,
            "podSetAssignments": [
                {"name": ps.get("name", "main"), "flavors": {"pods": self.flavor},
                 "count": int(ps.get("count", 1)),
                 "resourceUsage": {"pods": str(ps.get("count", 1))}}
                for ps in (workload.get("spec") or {}).get("podSets") or []
            ],
        }  # fmt: skip
        why = f"Quota reserved in ClusterQueue {self.cluster_queue}"
        conditions = _set(
            _conditions(workload), "QuotaReserved", "True", "QuotaReserved", why, stamp=stamp
        )
        conditions = _set(
            conditions, "Admitted", "True", "Admitted", "The workload is admitted", stamp=stamp
        )
        for type_ in ("Evicted", "Preempted"):
            if any(x.get("type") == type_ for x in conditions):
                conditions = _set(conditions, type_, "False", "QuotaReserved", why, stamp=stamp)
        self._write_status(workload, conditions=conditions, admission=admission)

    def _write_status(self, workload: JSON, **status: Any) -> None:
        meta = workload["metadata"]
        body = dict(workload)
        body["status"] = {**(workload.get("status") or {}), **status}
        path = f"{API}/namespaces/{meta['namespace']}/workloads/{meta['name']}/status"
        try:
            self.client.request("PUT", path, body=body)
        except ApiError as exc:
            if exc.status not in (404, 409):  # gone, or changed: the next step sees it anew
                raise

    def _workloads(self) -> list[JSON]:
        found = self.client.get(f"{API}/workloads") or {}
        return list(found.get("items") or [])

    # --- running in the background -------------------------------------------------------------

    def start(self, *, interval: float = 0.2) -> AdmissionSimulator:
        """Run `step` every ``interval`` seconds in a thread until `stop`; returns self."""

        def loop() -> None:
            while not self._stop.wait(interval):
                self.step()

        self._thread = threading.Thread(target=loop, name="kueue-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the client."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.client.close()

    def __enter__(self) -> AdmissionSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pod_count(workload: JSON) -> int:
    """Pods the Workload asks for (the sum of its pod sets' counts)."""
    return sum(int(ps.get("count", 1)) for ps in (workload.get("spec") or {}).get("podSets") or [])


def _create(client: KubeClient, path: str, body: JSON) -> None:
    try:
        client.request("POST", path, body=body)
    except ApiError as exc:
        if exc.status != 409:
            raise


def _queued(workload: JSON) -> bool:
    active = (workload.get("spec") or {}).get("active", True)
    return active is not False and not _true(workload, "Finished")


def _admission(workload: JSON) -> JSON | None:
    found = (workload.get("status") or {}).get("admission")
    return dict(found) if found else None


def _conditions(workload: JSON) -> list[JSON]:
    return list((workload.get("status") or {}).get("conditions") or [])


def _true(workload: JSON, type_: str) -> bool:
    return any(x.get("type") == type_ and x.get("status") == "True" for x in _conditions(workload))


def _set(
    conditions: list[JSON], type_: str, status: str, reason: str, message: str, *, stamp: str
) -> list[JSON]:
    old = next((x for x in conditions if x.get("type") == type_), None)
    since = old.get("lastTransitionTime", stamp) if old and old.get("status") == status else stamp
    new = {"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": since}  # fmt: skip
    return [*(x for x in conditions if x.get("type") != type_), new]


def _priority(workload: JSON) -> int:
    return int((workload.get("spec") or {}).get("priority") or 0)


def _order(workload: JSON) -> tuple[int, str]:
    return (-_priority(workload), _created(workload))


def _created(workload: JSON) -> str:
    return str(workload["metadata"].get("creationTimestamp", ""))


def _name(workload: JSON) -> str:
    return f"{workload['metadata'].get('namespace')}/{workload['metadata'].get('name')}"
