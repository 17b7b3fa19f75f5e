"""`KubernetesStore` against the fake API server: what the contract suite cannot see.

The status subresource carries each step and ``spec`` is never touched; the agent token is in
the job's Secret, not its status; a concurrent status write is a `ConflictError`; 429, 500 and
dropped connections are retried; a job applied with kubectl is adopted by its first step
(finalizer, Secret); a kubectl merge patch reaches the store through its cache; deletion keeps
the job (finalizer) until `remove_job`; two stores race for the Lease and one wins.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.kubestore import JOBS, KubeHarness, kube_server_with_crd, kubectl
from tests.unit.store.test_contract import MANIFEST, job
from trainguard import constants as c
from trainguard.backends.kubernetes.client import KubeApiError
from trainguard.controller.state import JobPhase
from trainguard.errors import ConflictError
from trainguard.spec.faults import FaultSpec
from trainguard.store import EventRecord, Lease, NodeRecord, StepWrite
from trainguard.testing.kube import DROP, KubeApiServer

WAIT = 10.0
JOB_PATH = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/default/{c.PLURAL}"


@pytest.fixture(scope="module")
def server() -> Iterator[KubeApiServer]:
    with kube_server_with_crd() as started:
        yield started


@pytest.fixture
def harness(server: KubeApiServer, tmp_path: Path) -> Iterator[KubeHarness]:
    made = KubeHarness(server, tmp_path)
    yield made
    made.close()


def stored_job(server: KubeApiServer, name: str = "train") -> dict[str, Any]:
    return server.objects.get(JOBS, "default", name)


def api(server: KubeApiServer) -> httpx.Client:
    """A plain HTTP client of the fake, as kubectl talks to it."""
    headers = {"Authorization": f"Bearer {server.token}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=WAIT)


def test_a_step_writes_the_status_subresource_only(
    server: KubeApiServer, harness: KubeHarness
) -> None:
    store = harness.open_store()
    record = job()
    record.state.token = "secret-token"
    store.create_job(record)
    before = stored_job(server)
    server.audit.clear()
    read = store.get_job("default", "train")
    read.state.move(JobPhase.CREATING, now=5.0)
    assert store.commit_step(read, StepWrite())
    writes = [e for e in server.audit if e.verb not in ("get", "list", "watch")]
    assert [(e.verb, e.resource, e.subresource) for e in writes] == [
        ("update", c.PLURAL, "status")
    ], "one status write per step"
    after = stored_job(server)
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["status"]["observedGeneration"] == before["metadata"]["generation"]
    assert after["status"]["trainguard"]["state"]["phase"] == JobPhase.CREATING.value
    assert "secret-token" not in str(after), "the token is not in the job object"
    secret = server.objects.get(("", "v1", "secrets"), "default", "train-agent-token")
    assert base64.b64decode(secret["data"]["token"]).decode() == "secret-token"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == after["metadata"]["uid"]
    assert store.commit_step(read, StepWrite()) is False, "nothing changed: no write"


def test_a_concurrent_status_write_is_a_conflict(harness: KubeHarness) -> None:
    mine, theirs = harness.open_store(), harness.open_store()
    mine.create_job(job())
    assert theirs.jobs.wait_for(lambda i: i.get("default", "train") is not None, WAIT)
    first, second = mine.get_job("default", "train"), theirs.get_job("default", "train")
    first.state.fault_count = 1
    mine.commit_step(first, StepWrite())
    second.state.fault_count = 2
    with pytest.raises(ConflictError, match="train"):
        theirs.commit_step(second, StepWrite())
    assert theirs.jobs.wait_for(
        lambda _: theirs.get_job("default", "train").state.fault_count == 1, WAIT
    ), "the winner's status is what the loser reads next"


@pytest.mark.parametrize("status", [429, 500, 503, DROP])
def test_failed_requests_are_retried(
    server: KubeApiServer, harness: KubeHarness, status: int
) -> None:
    store = harness.open_store()
    server.faults.inject(verb="create", resource=c.PLURAL, status=status, times=1)
    if status == 429:  # the server did nothing: repeated
        store.create_job(job())
    else:  # a create is not repeated once it may have landed: the caller hears of it
        with pytest.raises(KubeApiError, match="create HyperPodPyTorchJob default/train"):
            store.create_job(job())
        store.create_job(job())
    read = store.get_job("default", "train")
    read.state.fault_count = 3
    server.faults.inject(verb="update", resource=f"{c.PLURAL}/status", status=status, times=2)
    assert store.commit_step(read, StepWrite())
    assert stored_job(server)["status"]["trainguard"]["state"]["fault_count"] == 3
    assert server.faults.take("update", f"{c.PLURAL}/status") is None, "both faults were met"


def test_a_job_applied_with_kubectl_is_adopted_by_its_first_step(
    server: KubeApiServer, harness: KubeHarness
) -> None:
    store = harness.open_store()
    with api(server) as http:
        assert http.post(JOB_PATH, json=copy.deepcopy(MANIFEST)).status_code == 201
    assert store.jobs.wait_for(lambda i: i.get("default", "train") is not None, WAIT)
    read = store.get_job("default", "train")
    proposed = read.state.token
    assert proposed and store.get_job("default", "train").state.token == proposed, "stable"
    assert read.restarts == [] and read.state.phase is JobPhase.PENDING
    assert store.commit_step(read, StepWrite()), "adoption is a change even with no other"
    obj = stored_job(server)
    assert obj["metadata"]["finalizers"] == [c.FINALIZER_TEARDOWN]
    assert obj["status"]["trainguard"]["agentTokenSecret"] == "train-agent-token"
    other = harness.open_store()
    assert other.get_job("default", "train").state.token == proposed, "a new replica reads it"
    assert store.commit_step(store.get_job("default", "train"), StepWrite()) is False


def test_adoption_is_refused_on_a_job_changed_since_it_was_read(
    server: KubeApiServer, harness: KubeHarness
) -> None:
    store = harness.open_store()
    with api(server) as http:
        assert http.post(JOB_PATH, json=copy.deepcopy(MANIFEST)).status_code == 201
        assert store.jobs.wait_for(lambda i: i.get("default", "train") is not None, WAIT)
        read = store.get_job("default", "train")
        patch = {"metadata": {"labels": {"edited": "yes"}}}
        headers = {"Content-Type": "application/merge-patch+json"}
        assert http.patch(f"{JOB_PATH}/train", json=patch, headers=headers).status_code == 200
    with pytest.raises(ConflictError, match="train"):
        store.commit_step(read, StepWrite())
    assert "finalizers" not in stored_job(server)["metadata"], "nothing written"


def test_a_merge_patch_by_kubectl_is_seen_through_the_cache(
    server: KubeApiServer, harness: KubeHarness
) -> None:
    store = harness.open_store()
    store.create_job(job())
    patch = json.dumps({"metadata": {"labels": {"team": "ml"}}, "spec": {"nprocPerNode": "2"}})
    kubectl(harness.kubeconfig, "patch", "hpjob", "train", "--type", "merge", "-p", patch)
    assert store.jobs.wait_for(
        lambda _: store.get_job("default", "train").job.spec.nproc_per_node == "2", WAIT
    )
    read = store.get_job("default", "train")
    assert read.manifest["metadata"]["labels"] == {"team": "ml"}
    read.state.fault_count = 1
    assert store.commit_step(read, StepWrite())
    assert stored_job(server)["status"]["observedGeneration"] == 2
    shown = json.loads(kubectl(harness.kubeconfig, "get", "hpjob", "train", "-o", "json"))
    assert shown["status"]["trainguard"]["state"]["fault_count"] == 1


def test_deletion_waits_for_the_controller_then_takes_everything(
    server: KubeApiServer, harness: KubeHarness
) -> None:
    store = harness.open_store()
    record = job()
    record.state.token = "t"
    store.create_job(record)
    store.request_deletion("default", "train")
    marked = store.get_job("default", "train")
    assert marked.deletion_requested and "deletionTimestamp" in stored_job(server)["metadata"]
    store.remove_job("default", "train")
    assert store.find_job("default", "train") is None
    assert server.objects.find(JOBS, "default", "train") is None
    assert server.objects.find(("", "v1", "secrets"), "default", "train-agent-token") is None


def test_two_stores_racing_for_the_lease_elect_one(
    server: KubeApiServer, harness: KubeHarness
) -> None:
    stores = [harness.open_store(), harness.open_store()]
    won: list[Lease | None] = [None, None]
    barrier = threading.Barrier(2)

    def race(index: int) -> None:
        barrier.wait()
        won[index] = stores[index].take_lease(Lease(f"op-{index}", index, 100.0), expect=None)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    winners = [lease for lease in won if lease is not None]
    assert len(winners) == 1
    lease = server.objects.get(("coordination.k8s.io", "v1", "leases"), "default",
                               c.CONTROLLER_LEASE)  # fmt: skip
    assert lease["spec"]["holderIdentity"] == winners[0].holder
    loser = stores[won.index(None)]
    taken = loser.take_lease(Lease("op-x", 9, 200.0), expect=(winners[0].holder, 0))
    assert taken is not None and taken.renewals == 1
    after = server.objects.get(("coordination.k8s.io", "v1", "leases"), "default",
                               c.CONTROLLER_LEASE)  # fmt: skip
    assert (after["spec"]["holderIdentity"], after["spec"]["leaseTransitions"]) == ("op-x", 1)


def test_a_store_watching_some_namespaces_sees_only_them(
    server: KubeApiServer, harness: KubeHarness
) -> None:
    namespaces = server.api.registry.get("", "v1", "namespaces")
    for name in ("team-b", "team-c"):
        if server.objects.find(namespaces.key(), "", name) is None:
            server.api.create(namespaces, "", {"metadata": {"name": name}})
    everywhere = harness.open_store()
    for namespace in ("default", "team-b", "team-c"):
        record = job(f"job-{namespace}")
        record.namespace = record.manifest["metadata"]["namespace"] = namespace
        record.state.token = f"token-{namespace}"
        everywhere.create_job(record)
    only_b = harness.open_store(namespaces=["team-b"])
    assert [j.key for j in only_b.list_jobs()] == ["team-b/job-team-b"]
    two = harness.open_store(namespaces=["default", "team-b"])
    assert {j.key for j in two.list_jobs()} == {"default/job-default", "team-b/job-team-b"}
    assert two.get_job("team-b", "job-team-b").state.token == "token-team-b"
    assert two.find_job("team-c", "job-team-c") is None
    read = two.get_job("team-b", "job-team-b")
    read.state.fault_count = 4
    assert two.commit_step(read, StepWrite())
    assert two.jobs.wait_for(
        lambda _: two.get_job("team-b", "job-team-b").state.fault_count == 4, WAIT
    )
    assert {j.key for j in everywhere.list_jobs()} == {
        "default/job-default", "team-b/job-team-b", "team-c/job-team-c"
    }  # fmt: skip


def test_events_regard_their_object_by_uid(server: KubeApiServer, harness: KubeHarness) -> None:
    """``kubectl describe`` selects an object's events by kind, name, namespace and uid."""
    store = harness.open_store()
    store.save_node(NodeRecord("node-0"))
    event = EventRecord("Job", "default", "train", "Normal", "Created", "made", 1.0)
    store.create_job(job(), events=[event])
    store.add_events([EventRecord("Node", "", "node-0", "Warning", "NodeFault", "bad", 2.0)])
    events, _ = server.objects.list(("", "v1", "events"))  # the fake stores the core/v1 form
    regarding = {e["reason"]: e["involvedObject"] for e in events}
    assert regarding["Created"]["uid"] == stored_job(server)["metadata"]["uid"]
    node = server.objects.get(("", "v1", "nodes"), "", "node-0")
    assert regarding["NodeFault"]["uid"] == node["metadata"]["uid"]
    assert [e.reason for e in store.list_events()] == ["Created", "NodeFault"]
    described = kubectl(harness.kubeconfig, "describe", "hpjob", "train")
    assert "Created" in described and "made" in described, described


def test_a_token_secret_the_backend_made_first_is_the_jobs_token(
    server: KubeApiServer, harness: KubeHarness
) -> None:
    """The backend creates ``<job>-agent-token`` (``stringData``) when a step launches pods,
    before that step's commit: the commit keeps it, and every store reads that token."""
    store = harness.open_store()
    with api(server) as http:
        assert http.post(JOB_PATH, json=copy.deepcopy(MANIFEST)).status_code == 201
        assert store.jobs.wait_for(lambda i: i.get("default", "train") is not None, WAIT)
        read = store.get_job("default", "train")
        owner = stored_job(server)["metadata"]
        secret = {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {
                "name": "train-agent-token", "labels": {c.LABEL_JOB: "train"},
                "ownerReferences": [{"apiVersion": c.API_VERSION, "kind": c.KIND,
                                     "name": "train", "uid": owner["uid"], "controller": True}],
            },
            "stringData": {"token": read.state.token},
        }  # fmt: skip
        made = http.post("/api/v1/namespaces/default/secrets", json=secret)
        assert made.status_code == 201, made.text
    assert store.commit_step(read, StepWrite()), "adopted although nothing else changed"
    obj = stored_job(server)
    assert obj["metadata"]["finalizers"] == [c.FINALIZER_TEARDOWN]
    assert obj["status"]["trainguard"]["agentTokenSecret"] == "train-agent-token"
    assert harness.open_store().get_job("default", "train").state.token == read.state.token


def test_fault_request_ids_stay_unique_when_stores_race(harness: KubeHarness) -> None:
    stores = [harness.open_store(), harness.open_store()]
    stores[0].create_job(job())
    ids: list[int] = []
    lock = threading.Lock()

    def add(store_index: int) -> None:
        for _ in range(3):
            taken = stores[store_index].add_fault_request(
                "default", "train", FaultSpec("kill-worker"), 1.0
            )
            with lock:
                ids.append(taken)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert sorted(ids) == list(range(1, 7)), "one counter, compare-and-swap"
    assert stores[0].faults.cache.wait_for(
        lambda _: len(stores[0].list_fault_requests("default", "train")) == 6, WAIT
    ), "every request kept in the job's ConfigMap"


def test_remove_job_keeps_another_controllers_finalizer(
    server: KubeApiServer, harness: KubeHarness
) -> None:
    store = harness.open_store()
    store.create_job(job())
    add = [{"op": "add", "path": "/metadata/finalizers/-", "value": "example.com/keep"}]
    kubectl(harness.kubeconfig, "patch", "hpjob", "train", "--type", "json", "-p", json.dumps(add))
    store.request_deletion("default", "train")
    store.remove_job("default", "train")
    left = stored_job(server)["metadata"]
    assert left["finalizers"] == ["example.com/keep"] and left["deletionTimestamp"]
