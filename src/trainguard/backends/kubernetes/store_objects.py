"""Pods, Nodes and Events as the store's records, and back (`KubernetesStore`'s object half).

A `PodRecord` is a view of a Pod the backend created: the node is ``spec.nodeName``, the host
``status.podIP`` (empty until the kubelet reports one, and then no URL: an agent is reached at
its pod IP only), the port the container port named ``agent`` (8080), the phase
``status.phase``; job, replica spec, node rank, spare and restart attempt are the Pod's labels
(`trainguard.constants`); the backend's bookkeeping ``info`` is the JSON annotation
``trainguard.io/info``, plus ``disruptionTarget`` (`constants.POD_INFO_DISRUPTION`): the reason
of a ``DisruptionTarget`` condition Kubernetes set (eviction, taint manager, preemption), which
the controller treats as a node fault. The store only ever patches those labels and
annotations of an existing Pod — it never creates Pods (the backend does) nor rewrites what the
backend or the kubelet own.

A `NodeRecord` is a Node's labels and annotations, ``info`` again in ``trainguard.io/info``.

An `EventRecord` is an ``events.k8s.io/v1`` Event ``regarding`` the job, pod or node, with
HyperPod's reason as ``reason`` and ``action``, the message as ``note``, the component as
``reportingController`` (``hyperpod-pytorch-job-controller``): ``kubectl describe`` shows
them. Node events go to the ``default`` namespace, as the kubelet's do. Our Events carry the
label ``app.kubernetes.io/managed-by=trainguard`` so the store caches only its own.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from trainguard import constants as c
from trainguard.backends.kubernetes.nodes import disruption_info
from trainguard.backends.kubernetes.store_jobs import ANNOTATION_CREATED_AT, created_at, parse_time
from trainguard.store.records import EventRecord, NodeRecord, PodRecord

AGENT_PORT = 8080
AGENT_PORT_NAME = "agent"
ANNOTATION_PID = "trainguard.io/pid"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "trainguard"
NODE_EVENTS_NAMESPACE = "default"
_KINDS = {
    "Job": (c.API_VERSION, c.KIND),
    "Pod": ("v1", "Pod"),
    "Node": ("v1", "Node"),
}
_RECORD_KINDS = {kind: record for record, (_, kind) in _KINDS.items()}


# --- pods --------------------------------------------------------------------------------------


def pod_record(
    obj: dict[str, Any], node: dict[str, Any] | None = None, *, now: float | None = None
) -> PodRecord:
    """The record of Pod ``obj``; ``node``, its Node, for a ``NoExecute`` taint the pod does
    not tolerate (`nodes.disruption_info`)."""
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    labels = dict(meta.get("labels") or {})
    annotations = meta.get("annotations") or {}
    host = status.get("podIP") or ""
    rank = labels.get(c.LABEL_NODE_RANK)
    return PodRecord(
        namespace=meta.get("namespace", ""), name=meta["name"], job=labels.get(c.LABEL_JOB, ""),
        node=spec.get("nodeName") or "", replica_spec=labels.get(c.LABEL_REPLICA_SPEC, ""),
        node_rank=int(rank) if rank and rank.isdigit() else None,
        spare=labels.get(c.LABEL_SPARE) == "true",
        attempt=_int(labels.get(c.LABEL_RESTART_ATTEMPT)) or 0,
        phase=status.get("phase") or "Pending", host=host,
        port=agent_port(spec) if host else None, pid=_int(annotations.get(ANNOTATION_PID)),
        created_at=created_at(meta), labels=labels,
        info=_info(annotations) | disruption_info(obj, node, now=now),
    )  # fmt: skip


def agent_port(spec: dict[str, Any]) -> int:
    """The container port named ``agent`` (8080 when no container names one)."""
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == AGENT_PORT_NAME:
                return int(port["containerPort"])
    return AGENT_PORT


def pod_labels(pod: PodRecord) -> dict[str, str | None]:
    """The labels `save_pod` sets: the record's, and its fields (None deletes)."""
    return {
        **pod.labels,
        c.LABEL_JOB: pod.job,
        c.LABEL_REPLICA_SPEC: pod.replica_spec,
        c.LABEL_NODE_RANK: None if pod.node_rank is None else str(pod.node_rank),
        c.LABEL_RESTART_ATTEMPT: str(pod.attempt),
        c.LABEL_SPARE: "true" if pod.spare else "false",
    }


def pod_annotations(pod: PodRecord, *, has_created_at: bool) -> dict[str, str | None]:
    """The annotations `save_pod` sets (the creation time only on a Pod lacking it)."""
    info = {k: v for k, v in pod.info.items() if k != c.POD_INFO_DISRUPTION}  # the Pod's own
    annotations: dict[str, str | None] = {
        c.ANNOTATION_INFO: _dumps(info) if info else None,
        ANNOTATION_PID: None if pod.pid is None else str(pod.pid),
    }
    if not has_created_at:
        annotations[ANNOTATION_CREATED_AT] = repr(pod.created_at)
    return annotations


def pod_patch(pod: PodRecord, current: dict[str, Any]) -> dict[str, Any]:
    """The merge patch recording ``pod`` on the existing Pod ``current``."""
    known = ANNOTATION_CREATED_AT in (current["metadata"].get("annotations") or {})
    meta = {"labels": pod_labels(pod), "annotations": pod_annotations(pod, has_created_at=known)}
    return {"metadata": meta}


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    """A controller ownerReference to ``owner`` (the job): the garbage collector follows it."""
    return {
        "apiVersion": owner.get("apiVersion", c.API_VERSION),
        "kind": owner.get("kind", c.KIND),
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


# --- nodes -------------------------------------------------------------------------------------


def node_record(obj: dict[str, Any]) -> NodeRecord:
    """The record of Node ``obj``."""
    meta = obj["metadata"]
    annotations = dict(meta.get("annotations") or {})
    info = _info(annotations)
    annotations.pop(c.ANNOTATION_INFO, None)
    return NodeRecord(
        name=meta["name"],
        labels=dict(meta.get("labels") or {}),
        annotations=annotations,
        created_at=parse_time(meta.get("creationTimestamp")),
        info=info,
    )


def node_object(node: NodeRecord, current: dict[str, Any] | None) -> dict[str, Any]:
    """``current`` (or a new Node) with the record's labels, annotations and info."""
    obj: dict[str, Any] = (
        dict(current) if current is not None else {"apiVersion": "v1", "kind": "Node"}
    )
    annotations = dict(node.annotations)
    if node.info:
        annotations[c.ANNOTATION_INFO] = _dumps(node.info)
    meta = dict(obj.get("metadata") or {"name": node.name})
    meta.update(labels=dict(node.labels), annotations=annotations)
    return {**obj, "metadata": meta}


# --- events ------------------------------------------------------------------------------------


def event_object(event: EventRecord, *, instance: str, uid: str | None = None) -> dict[str, Any]:
    """The ``events.k8s.io/v1`` Event of ``event``, reported by ``instance``, regarding the
    object with ``uid`` (``kubectl describe`` finds an object's events by its uid too)."""
    api_version, kind = _KINDS.get(event.kind, ("v1", event.kind))
    regarding: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "name": event.name}
    if event.namespace:
        regarding["namespace"] = event.namespace
    if uid:
        regarding["uid"] = uid
    namespace = event.namespace or NODE_EVENTS_NAMESPACE
    meta = {
        "name": f"{event.name}.{uuid.uuid4().hex[:16]}",
        "namespace": namespace,
        "labels": {LABEL_MANAGED_BY: MANAGED_BY},
    }
    return {
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta,
        "eventTime": micro_time(event.time), "reportingController": event.component,
        "reportingInstance": instance, "action": event.reason, "reason": event.reason,
        "note": event.message[:1024], "type": event.type, "regarding": regarding,
    }  # fmt: skip


def event_record(obj: dict[str, Any]) -> EventRecord:
    """The record of Event ``obj``."""
    regarding = obj.get("regarding") or {}
    kind = regarding.get("kind", "")
    return EventRecord(
        kind=_RECORD_KINDS.get(kind, kind),
        namespace=regarding.get("namespace") or "",
        name=regarding.get("name", ""),
        type=obj.get("type", ""),
        reason=obj.get("reason", ""),
        message=obj.get("note", ""),
        time=parse_time(obj.get("eventTime")),
        component=obj.get("reportingController", ""),
    )


def event_kind(kind: str) -> str:
    """The ``regarding.kind`` of events about a record kind (``Job``, ``Pod``, ``Node``)."""
    return _KINDS.get(kind, ("", kind))[1]


def micro_time(epoch: float) -> str:
    """Epoch seconds as a ``metav1.MicroTime`` (RFC 3339, microseconds)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _info(annotations: dict[str, Any]) -> dict[str, Any]:
    text = annotations.get(c.ANNOTATION_INFO)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _present(values: dict[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


def _int(value: str | None) -> int | None:
    return int(value) if value and value.lstrip("-").isdigit() else None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
