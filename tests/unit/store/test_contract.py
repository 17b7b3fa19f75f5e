"""The `Store` contract: the same scenarios against every implementation (`conftest.STORES`).

Jobs (typed round trip, version conflicts), pods, nodes, events, restart history, fault requests
with outcomes, the lease with fencing, and `commit_step`: a step's rows land with the job's
status or not at all.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.store.conftest import Opener
from trainguard import constants as c
from trainguard.controller.state import ActiveFault, JobPhase, JobState
from trainguard.errors import ConflictError, LeaseLostError, NotFoundError
from trainguard.spec.faults import FaultSpec
from trainguard.spec.job import HyperPodPyTorchJob
from trainguard.spec.status import JobStatus
from trainguard.store import (
    EventRecord,
    FaultOutcome,
    JobRecord,
    Lease,
    NodePatch,
    NodeRecord,
    PodRecord,
    RestartRecord,
    StepWrite,
    Store,
)

MANIFEST = {
    "apiVersion": "sagemaker.amazonaws.com/v1",
    "kind": "HyperPodPyTorchJob",
    "metadata": {"name": "train", "namespace": "default"},
    "spec": {
        "nprocPerNode": "1",
        "replicaSpecs": [
            {
                "name": "pods",
                "replicas": 1,
                "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}},
            }
        ],
    },
}


def job(name: str = "train") -> JobRecord:
    spec = HyperPodPyTorchJob.model_validate({**MANIFEST, "metadata": {"name": name}})
    return JobRecord("default", name, f"uid-{name}", spec, spec.to_manifest(), created_at=1.0)


def restart(time: float, kind: str = c.RESTART_PLR) -> RestartRecord:
    return RestartRecord("default", "train", time, kind, "WorkerCrash", ("p",), (1,), ("n",))


def event(reason: str) -> EventRecord:
    return EventRecord("Job", "default", "train", "Normal", reason, "x", 1.0)


def pod(name: str, node: str = "node-0") -> PodRecord:
    return PodRecord("default", name, "train", node, "pods", 0)


def made(opener: Opener, record: PodRecord) -> PodRecord:
    """``record`` once its pod exists (a Kubernetes store records only Pods that exist)."""
    opener.make_pod(record)
    return record


def test_a_job_comes_back_typed_and_versioned(store: Store) -> None:
    created = job()
    fault = ActiveFault(reason="R", message="m", detected_at=1, observed_at=2)
    created.state = JobState(token="t", fault=fault)
    store.create_job(created)
    with pytest.raises(ConflictError):
        store.create_job(job())
    loaded = store.get_job("default", "train")
    assert loaded.job.spec.replica_specs[0].name == "pods"
    assert loaded.state == created.state and loaded.status == JobStatus()
    assert (loaded.version, loaded.restarts, loaded.defects) == (created.version, [], ())
    assert [j.name for j in store.list_jobs()] == ["train"] and store.list_jobs("other") == []
    assert store.find_job("default", "nope") is None
    with pytest.raises(NotFoundError):
        store.get_job("default", "nope")


def test_commit_step_writes_once_and_refuses_a_stale_version(store: Store) -> None:
    store.create_job(job())
    first, second = store.get_job("default", "train"), store.get_job("default", "train")
    assert store.commit_step(first, StepWrite()) is False, "nothing changed: no write"
    before = first.version
    first.state.move(JobPhase.CREATING, now=5.0)
    assert store.commit_step(first, StepWrite()) is True and first.version > before
    assert store.get_job("default", "train").state.phase is JobPhase.CREATING
    second.state.token = "other"
    with pytest.raises(ConflictError):
        store.commit_step(second, StepWrite(restarts=[restart(3.0)]))
    assert store.list_restarts("default", "train") == []


def test_a_deletion_request_beats_a_stale_step(store: Store) -> None:
    store.create_job(job())
    read = store.get_job("default", "train")
    store.request_deletion("default", "train")
    with pytest.raises(ConflictError):
        store.commit_step(read, StepWrite(events=[event("X")]))
    assert store.get_job("default", "train").deletion_requested
    assert store.list_events(kind="Job") == []


def test_set_suspend_changes_only_run_policy_suspend(store: Store) -> None:
    created = job()
    created.state = JobState(token="t")
    store.create_job(created)
    store.set_suspend("default", "train", suspend=True)
    loaded = store.get_job("default", "train")
    assert loaded.job.spec.run_policy.suspend is True
    assert loaded.state.token == "t" and loaded.job.spec.replica_specs[0].name == "pods"
    store.set_suspend("default", "train", suspend=False)
    assert store.get_job("default", "train").job.spec.run_policy.suspend is False
    with pytest.raises(NotFoundError):
        store.set_suspend("default", "nope", suspend=True)


def test_commit_step_lands_every_row_of_the_step(store: Store, opener: Opener) -> None:
    store.create_job(job())
    store.save_node(NodeRecord("node-0", {"a": "1"}))
    store.save_pod(made(opener, pod("old")))
    read = store.get_job("default", "train")
    write = StepWrite(restarts=[restart(2.0)], node_patches=[NodePatch("node-0", {"a": None})])
    write.save_pod(made(opener, pod("new")))
    write.remove_pod("default", "old")
    write.events.append(EventRecord("Job", "default", "train", "Normal", "X", "x", 2.0))
    read.state.fault_count = 1
    store.commit_step(read, write)
    assert [r.time for r in read.restarts] == [2.0], "the record carries its new history"
    again = store.get_job("default", "train")
    assert again.state.fault_count == 1 and [r.time for r in again.restarts] == [2.0]
    assert [p.name for p in store.list_pods("default", "train")] == ["new"]
    assert store.get_node("node-0").labels == {}
    assert [e.reason for e in store.list_events(kind="Job")] == ["X"]


def test_a_failure_mid_commit_lands_nothing(store: Store, opener: Opener) -> None:
    """A node patch on a node that does not exist fails after the status, restart and pod rows
    were written inside the commit: none of them may remain."""
    store.create_job(job())
    store.save_pod(made(opener, pod("old")))
    read = store.get_job("default", "train")
    read.state.fault_count = 7
    write = StepWrite(restarts=[restart(2.0)], node_patches=[NodePatch("node-9", {"a": "1"})])
    write.save_pod(made(opener, dataclasses.replace(pod("new"), info={"step": "failed"})))
    write.remove_pod("default", "old")
    write.events.append(EventRecord("Job", "default", "train", "Normal", "X", "x", 2.0))
    with pytest.raises(NotFoundError, match="node-9"):
        store.commit_step(read, write)
    stored = store.get_job("default", "train")
    assert (stored.version, stored.state.fault_count, stored.restarts) == (read.version, 0, [])
    pods = store.list_pods("default", "train")
    assert "old" in [p.name for p in pods] and not any(p.info for p in pods), "no pod row landed"
    assert store.list_events(kind="Job") == []
    fresh = store.get_job("default", "train")
    fresh.state.fault_count = 1
    assert store.commit_step(fresh, StepWrite()), "the job is still writable"


def test_restart_history_is_the_restart_rows(store: Store) -> None:
    store.create_job(job())
    read = store.get_job("default", "train")
    store.commit_step(read, StepWrite(restarts=[restart(1.0), restart(2.0)]))
    store.commit_step(read, StepWrite(restarts=[restart(3.0, c.RESTART_JLR), restart(4.0)]))
    history = store.get_job("default", "train").history
    assert (history.total, history.full, history.plr_times) == (4, 1, (4.0,))
    assert store.list_restarts("default", "train")[0].faulty_ranks == (1,)


def test_remove_job_takes_pods_events_restarts_and_faults(store: Store, opener: Opener) -> None:
    store.create_job(job(), faults=[FaultSpec("kill-worker")], events=[event("C")])
    assert len(store.list_events(kind="Job")) == 1
    read = store.get_job("default", "train")
    write = StepWrite(restarts=[restart(2.0)])
    write.save_pod(made(opener, pod("p")))
    store.commit_step(read, write)
    store.remove_job("default", "train")
    assert store.list_pods("default", "train") == [] and store.list_events(kind="Job") == []
    assert store.list_restarts("default", "train") == []
    assert store.list_fault_requests("default", "train") == []
    with pytest.raises(NotFoundError):
        store.get_job("default", "train")


def test_pods_and_nodes(store: Store, opener: Opener) -> None:
    store.save_pod(made(opener, pod("b", "node-1")))
    store.save_pod(made(opener, pod("a")))
    assert {p.name for p in store.list_pods()} == {"a", "b"}
    store.save_node(NodeRecord("node-10"))
    store.save_node(NodeRecord("node-2", {"a": "1", "b": "2"}, {"x": "y"}))
    assert [n.name for n in store.list_nodes()] == ["node-2", "node-10"]
    node = store.patch_node("node-2", labels={"a": "3", "b": None}, annotations={"z": "w"})
    assert node.labels == {"a": "3"} and node.annotations == {"x": "y", "z": "w"}
    assert store.get_node("node-2") == node
    with pytest.raises(NotFoundError):
        store.patch_node("node-9", labels={"a": "1"})
    store.remove_node("node-10")
    assert store.find_node("node-10") is None


def test_fault_requests_keep_their_outcome(store: Store) -> None:
    first = store.add_fault_request("default", "train", FaultSpec("kill-worker"), 1.0)
    assert [r.id for r in store.pending_fault_requests()] == [first]
    store.complete_fault_request(first, outcome=FaultOutcome.INJECTED, result="done", now=2.0)
    assert store.pending_fault_requests() == []
    done = store.get_fault_request(first)
    assert (done.outcome, done.result, done.done_at) == (FaultOutcome.INJECTED, "done", 2.0)
    store.complete_fault_request(first, outcome=FaultOutcome.NOT_INJECTED, result="x", now=3.0)
    assert store.get_fault_request(first).outcome is FaultOutcome.INJECTED, "decided stays"
    assert store.list_fault_requests("default", "train") == [done]
    with pytest.raises(NotFoundError):
        store.get_fault_request(first + 100)


def test_the_lease_is_a_compare_and_swap(store: Store) -> None:
    first = store.take_lease(Lease("a", 1, 100.0), expect=None)
    assert first is not None and first.renewals == 0
    assert store.take_lease(Lease("b", 2, 105.0), expect=None) is None
    assert store.take_lease(Lease("b", 2, 120.0), expect=("a", 1)) is None, "stale observation"
    taken = store.take_lease(Lease("b", 2, 120.0), expect=("a", 0))
    assert taken is not None and taken.renewals == 1
    store.release_lease("a")
    lease = store.current_lease()
    assert lease is not None and lease.holder == "b", "releasing a lease we lost leaves it"


def test_a_fenced_store_refuses_a_step_once_its_holder_lost_the_lease(opener: Opener) -> None:
    mine, theirs = opener(), opener()
    assert mine.take_lease(Lease("a", 1, 100.0), expect=None) is not None
    mine.fence("a")
    mine.create_job(job())
    read = mine.get_job("default", "train")
    assert theirs.take_lease(Lease("b", 2, 110.0), expect=("a", 0)) is not None
    read.state.fault_count = 1
    write = StepWrite(restarts=[restart(2.0)])
    write.save_pod(made(opener, dataclasses.replace(pod("p"), info={"step": "refused"})))
    with pytest.raises(LeaseLostError, match="lost its lease"):
        mine.commit_step(read, write)
    with pytest.raises(LeaseLostError):
        mine.save_node(NodeRecord("node-1"))
    stored = theirs.get_job("default", "train")
    assert (stored.state.fault_count, stored.restarts) == (0, [])
    assert not any(p.info for p in theirs.list_pods()), "the pod record was not saved"
