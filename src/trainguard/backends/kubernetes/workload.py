"""A job's Kueue Workload, and what Kueue's answer on it means: pure mappings, no I/O.

HyperPod's task governance runs Kueue with ``externalFrameworks:
["HyperPodPyTorchJob.v1.sagemaker.amazonaws.com"]``: Kueue does not know our kind, so the
job's own controller (the operator) writes the ``kueue.x-k8s.io/v1beta1`` Workload and obeys
it, as Kueue's jobframework does for the kinds it knows. The field names are Kueue's
(``apis/kueue/v1beta1/workload_types.go``):

- ``spec.queueName`` from the job's ``kueue.x-k8s.io/queue-name`` label; one ``podSets``
  entry per replica group, ``count`` = replicas + spares (a spare holds a node like a rank),
  ``template`` the group's pod template; ``priorityClassName`` from the
  ``kueue.x-k8s.io/priority-class`` label with ``priority`` its WorkloadPriorityClass's value
  and ``priorityClassSource: kueue.x-k8s.io/workloadpriorityclass``; a controller
  ownerReference to the job, so the garbage collector removes the Workload with it.
- Kueue answers in ``status``: ``admission.podSetAssignments[].flavors`` (ResourceFlavors,
  whose ``spec.nodeLabels`` and ``spec.tolerations`` the pods must get), the conditions
  ``QuotaReserved``, ``Admitted``, ``Evicted`` (reason ``Preempted``, ...) and ``Finished``,
  and ``admissionChecks[].podSetUpdates`` (more node selectors and tolerations).

Node selectors and tolerations are merged over all pod sets: the controller places a job's
pods with one selector (a job's groups share their nodes' flavor in practice).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from trainguard import constants as c
from trainguard.backends.gate import Admission
from trainguard.clock import rfc3339
from trainguard.spec.job import HyperPodPyTorchJob, ReplicaSpec

Manifest = dict[str, Any]
PRIORITY_SOURCE = "kueue.x-k8s.io/workloadpriorityclass"
QUOTA_RESERVED, ADMITTED, EVICTED, FINISHED = "QuotaReserved", "Admitted", "Evicted", "Finished"
MAX_NAME = 253


def workload_name(job: str, uid: str) -> str:
    """``hyperpodpytorchjob-<job>-<hash>``: Kueue's naming for a job's Workload (kind, name, a
    short hash of the uid so a recreated job of the same name gets a new Workload)."""
    digest = hashlib.sha256(uid.encode()).hexdigest()[:5]
    prefix = f"{c.SINGULAR}-{job}"[: MAX_NAME - 6]
    return f"{prefix}-{digest}"


def queue_name(job: HyperPodPyTorchJob) -> str | None:
    """The LocalQueue the job asks for (its ``kueue.x-k8s.io/queue-name`` label), or None."""
    return (job.metadata.labels or {}).get(c.LABEL_KUEUE_QUEUE) or None


def priority_class(job: HyperPodPyTorchJob) -> str | None:
    """The WorkloadPriorityClass the job names (``kueue.x-k8s.io/priority-class``), or None."""
    return (job.metadata.labels or {}).get(c.LABEL_KUEUE_PRIORITY) or None


def podset_name(group: ReplicaSpec) -> str:
    """The pod set of a replica group (a DNS label: a group name's dots become dashes)."""
    return group.name.replace(".", "-")


def workload_manifest(
    job: HyperPodPyTorchJob, *, uid: str, queue: str, priority: int | None
) -> Manifest:
    """The Workload for ``job`` (uid ``uid``) in LocalQueue ``queue``; ``priority`` is the
    value of its priority class (None: it names none)."""
    spec: Manifest = {
        "queueName": queue,
        "active": True,
        "podSets": [_podset(group) for group in job.spec.replica_specs],
    }
    name = priority_class(job)
    if name is not None and priority is not None:
        spec.update(priorityClassName=name, priority=priority, priorityClassSource=PRIORITY_SOURCE)
    owner = {
        "apiVersion": c.API_VERSION, "kind": c.KIND, "name": job.name, "uid": uid,
        "controller": True, "blockOwnerDeletion": True,
    }  # fmt: skip
    return {
        "apiVersion": c.KUEUE_API_VERSION,
        "kind": "Workload",
        "metadata": {
            "name": workload_name(job.name, uid),
            "namespace": job.namespace,
            "labels": {c.LABEL_KUEUE_JOB_UID: uid},
            "ownerReferences": [owner],
        },
        "spec": spec,
    }


def _podset(group: ReplicaSpec) -> Manifest:
    template = group.template.to_manifest()
    metadata = template.get("metadata") or {}
    kept = {k: v for k, v in metadata.items() if k in ("labels", "annotations")}
    podset: Manifest = {
        "name": podset_name(group),
        "count": group.replicas + group.spares,
        "template": {"metadata": kept, "spec": template.get("spec") or {}},
    }
    annotations = metadata.get("annotations") or {}
    topology = {
        key: annotations[annotation]
        for key, annotation in (
            ("required", c.ANNOTATION_KUEUE_REQUIRED_TOPOLOGY),
            ("preferred", c.ANNOTATION_KUEUE_PREFERRED_TOPOLOGY),
        )
        if annotation in annotations
    }
    if topology:
        podset["topologyRequest"] = topology
    return podset


def condition(workload: Manifest, type_: str) -> Manifest | None:
    """The Workload's condition of ``type_``, or None."""
    for found in (workload.get("status") or {}).get("conditions") or []:
        if found.get("type") == type_:
            return dict(found)
    return None


def is_true(workload: Manifest, type_: str) -> bool:
    """Whether the Workload's condition ``type_`` is True."""
    found = condition(workload, type_)
    return found is not None and found.get("status") == "True"


def flavor_names(workload: Manifest) -> list[str]:
    """The ResourceFlavors the admission assigned (every pod set, every resource)."""
    admission = (workload.get("status") or {}).get("admission") or {}
    names = {
        str(flavor)
        for assignment in admission.get("podSetAssignments") or []
        for flavor in (assignment.get("flavors") or {}).values()
    }
    return sorted(names)


def admission_of(workload: Manifest, flavors: Mapping[str, Manifest]) -> Admission:
    """What Kueue's status on ``workload`` means for the job (``flavors``: the assigned
    ResourceFlavor objects by name)."""
    admitted = (workload.get("status") or {}).get("admission") is not None
    if is_true(workload, EVICTED):
        evicted = condition(workload, EVICTED) or {}
        return Admission(False, str(evicted.get("reason") or EVICTED), _message(evicted))
    if not (admitted and is_true(workload, ADMITTED)):
        reserved = condition(workload, QUOTA_RESERVED) or {}
        why = _message(reserved) or f"Workload {_name(workload)} waits for admission"
        return Admission(False, str(reserved.get("reason") or "Pending"), why)
    selector: dict[str, str] = {}
    tolerations: list[Manifest] = []
    for name in flavor_names(workload):
        spec = flavors[name].get("spec") or {}
        selector.update(spec.get("nodeLabels") or {})
        _add(tolerations, spec.get("tolerations") or [])
    for check in (workload.get("status") or {}).get("admissionChecks") or []:
        for update in check.get("podSetUpdates") or []:
            selector.update(update.get("nodeSelector") or {})
            _add(tolerations, update.get("tolerations") or [])
    queue = ((workload.get("status") or {}).get("admission") or {}).get("clusterQueue")
    return Admission(True, ADMITTED, f"admitted by ClusterQueue {queue}", selector, tolerations)


def with_condition(
    conditions: list[Manifest], type_: str, status: str, reason: str, message: str, *, now: float
) -> list[Manifest]:
    """``conditions`` with ``type_`` set (metav1.Condition: a new transition time on change)."""
    old = next((x for x in conditions if x.get("type") == type_), None)
    stamp = rfc3339(now)
    if old is not None and old.get("status") == status:
        stamp = old.get("lastTransitionTime") or stamp
    new = {"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": stamp}  # fmt: skip
    return [*(x for x in conditions if x.get("type") != type_), new]


def _add(into: list[Manifest], more: list[Manifest]) -> None:
    into.extend(t for t in more if t not in into)


def _message(found: Manifest) -> str:
    return str(found.get("message") or "")


def _name(workload: Manifest) -> str:
    return str((workload.get("metadata") or {}).get("name", ""))
