"""The store's records as API objects and back, without a server: what a status write sends,
what a read of the object returns, and where each field lives."""

from __future__ import annotations

from typing import Any

from tests.unit.store.test_contract import job, restart
from trainguard import constants as c
from trainguard.backends.kubernetes import store_objects as objs
from trainguard.backends.kubernetes.leases import lease_object, lease_record
from trainguard.backends.kubernetes.store_jobs import (
    OURS,
    JobReader,
    new_object,
    status_json,
    status_object,
)
from trainguard.controller.state import JobPhase
from trainguard.store import EventRecord, Lease, NodeRecord, PodRecord


def served(obj: dict, **meta: object) -> dict:
    """``obj`` as an API server returns it (server-set metadata added)."""
    return {**obj, "metadata": {**obj["metadata"], "uid": "u-1", "generation": 1, **meta}}


def test_a_job_round_trips_through_its_object_and_status_write() -> None:
    record = job()
    record.state.move(JobPhase.CREATING, now=3.0)
    record.finished_at, record.source_dir = 9.0, "/src"
    created = new_object(record)
    assert created["metadata"]["finalizers"] == [c.FINALIZER_TEARDOWN] and "status" not in created
    body = status_object(record, resource_version="7", generation=1, restarts=[restart(2.0)])
    assert body["metadata"]["resourceVersion"] == "7" and "spec" not in body
    assert body["status"]["observedGeneration"] == 1
    stored = served({**created, "status": body["status"]}, resourceVersion="8")
    read = JobReader().record(stored)
    assert (read.state, read.finished_at, read.source_dir) == (record.state, 9.0, "/src")
    assert [r.time for r in read.restarts] == [2.0] and read.version == 8
    assert read.created_at == 1.0 and read.manifest["spec"] == record.manifest["spec"]
    assert OURS not in read.status.to_manifest(), "our bookkeeping stays out of JobStatus"
    assert (read.loaded.status, read.loaded.ours) == status_json(read)


def test_a_job_marked_for_deletion_and_a_bad_status_are_read() -> None:
    obj = served(new_object(job()), resourceVersion="3", deletionTimestamp="2025-01-01T00:00:00Z")
    obj["status"] = {"restartCount": "many", OURS: {"state": {"phase": "Nope"}}}
    read = JobReader().record(obj)
    assert read.deletion_requested and len(read.defects) == 2


def backend_pod(labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    """A Pod as the backend creates it (the parts the store reads)."""
    meta = {"name": "p", "namespace": "default", "labels": labels, "annotations": annotations}
    port = {"name": "agent", "containerPort": 8080}
    spec = {"nodeName": "node-0", "containers": [{"name": "c", "image": "i", "ports": [port]}]}
    return served({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec},
                  creationTimestamp="2025-01-01T00:00:00Z")  # fmt: skip


def test_a_pod_record_is_the_pods_labels_annotations_and_status() -> None:
    record = PodRecord("default", "p", "train", "node-0", "pods", 2, attempt=1, info={"k": 1})
    record.created_at = 1.0
    patch = objs.pod_patch(record, backend_pod({c.LABEL_JOB: "train"}, {}))
    assert patch["metadata"]["labels"][c.LABEL_NODE_RANK] == "2"
    obj = backend_pod(patch["metadata"]["labels"], patch["metadata"]["annotations"])
    pending = objs.pod_record(obj)
    assert (pending.node_rank, pending.attempt, pending.info, pending.url) == (2, 1, {"k": 1}, None)
    assert pending.node == "node-0" and pending.created_at == 1.0, "the record's own clock"
    running = objs.pod_record({**obj, "status": {"phase": "Running", "podIP": "127.1.0.5"}})
    assert running.url == "http://127.1.0.5:8080" and running.phase == "Running"
    record.node_rank, record.spare = None, True
    patch = objs.pod_patch(record, obj)
    assert patch["metadata"]["labels"][c.LABEL_NODE_RANK] is None, "a merge patch deletes it"
    assert patch["metadata"]["labels"][c.LABEL_SPARE] == "true"


def test_a_disruption_target_condition_is_in_the_pods_info_but_never_stored() -> None:
    condition = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"}
    obj = {**backend_pod({c.LABEL_JOB: "train"}, {}), "status": {"conditions": [condition]}}
    record = objs.pod_record(obj)
    assert record.info == {c.POD_INFO_DISRUPTION: "DeletionByTaintManager"}
    patch = objs.pod_patch(record, obj)
    assert patch["metadata"]["annotations"][c.ANNOTATION_INFO] is None, "derived, not stored"


def test_nodes_keep_info_in_an_annotation() -> None:
    node = NodeRecord("n", {"a": "1"}, {"x": "y"}, info={"slots": 2})
    obj = objs.node_object(node, None)
    assert obj["metadata"]["annotations"][c.ANNOTATION_INFO] == '{"slots":2}'
    read = objs.node_record(obj)
    assert (read.labels, read.annotations, read.info) == ({"a": "1"}, {"x": "y"}, {"slots": 2})


def test_events_are_events_k8s_io_regarding_their_object() -> None:
    event = EventRecord(
        "Job", "default", "train", "Warning", "NodeFault", "Found unhealthy node n", 5.5
    )
    obj = objs.event_object(event, instance="op-1", uid="u-1")
    assert obj["regarding"] == {"apiVersion": c.API_VERSION, "kind": c.KIND, "name": "train",
                                "namespace": "default", "uid": "u-1"}  # fmt: skip
    assert obj["reportingController"] == c.CONTROLLER_COMPONENT and obj["action"] == "NodeFault"
    assert objs.event_record(obj) == event
    node_event = objs.event_object(
        EventRecord("Node", "", "n", "Normal", "R", "m", 1.0), instance="i"
    )
    assert (
        node_event["metadata"]["namespace"] == "default"
        and objs.event_record(node_event).namespace == ""
    )


def test_an_event_names_the_uid_of_its_object_so_kubectl_describe_finds_it() -> None:
    event = EventRecord("Job", "default", "train", "Normal", "Created", "Job created", 1.0)
    obj = objs.event_object(event, instance="op-1", uid="u-1")
    assert obj["regarding"]["uid"] == "u-1"
    assert objs.event_record(obj) == event


def test_a_lease_record_round_trips_and_counts_transitions() -> None:
    first = lease_object(Lease("a", 1, 100.0, "http://cb", None, 0, 10.0), None, "ns", "l")
    assert first["spec"]["holderIdentity"] == "a" and first["spec"]["leaseTransitions"] == 0
    assert lease_record(first) == Lease("a", 1, 100.0, "http://cb", None, 0, 10.0)
    taken = lease_object(Lease("b", 2, 120.0, renewals=1, duration=2.5), first, "ns", "l")
    assert taken["spec"]["leaseTransitions"] == 1 and taken["spec"]["leaseDurationSeconds"] == 3
    assert lease_record(taken) == Lease("b", 2, 120.0, None, None, 1, 2.5)
    assert lease_record({**taken, "spec": {}}) is None, "a released lease is nobody's"
