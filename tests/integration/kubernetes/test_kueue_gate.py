"""`KueueGate` and the `AdmissionSimulator` against the fake API server, step by step.

A queued job gets a ``kueue.x-k8s.io/v1beta1`` Workload shaped as Kueue expects (queue name,
owner reference, a pod set per replica group counting replicas + spares, priority from its
WorkloadPriorityClass) and is not admitted until the simulator reserves quota; admitted, it
gets the flavor's node labels and tolerations. A more important job evicts it (``Evicted``,
``Preempted``) but is admitted only once the evicted job released its quota; a finished
Workload frees the quota and the evicted job is admitted again. A job without a queue label
is admitted at once and gets no Workload. The gate reads Workloads and ResourceFlavors from
watched caches: after the simulator wrote, a test waits until the gate's cache holds what the
server holds (`settled`), and steps of an admitted job send no request at all.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kubestore import JOBS, kube_server_with_crd
from tests.unit.controller.harness import BASE
from trainguard import constants as c
from trainguard.backends.kubernetes.cache import key_of, version_of
from trainguard.backends.kubernetes.client import KubeClient, load_config
from trainguard.backends.kubernetes.kueue import KueueGate
from trainguard.backends.kubernetes.workload import workload_name
from trainguard.spec import HyperPodPyTorchJob
from trainguard.store import JobRecord
from trainguard.testing.kube import KubeApiServer
from trainguard.testing.kueue import AdmissionSimulator

WORKLOADS = (c.KUEUE_GROUP, c.KUEUE_VERSION, "workloads")
TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
NOW = 1_700_000_000.0


@pytest.fixture
def server() -> Iterator[KubeApiServer]:
    with kube_server_with_crd() as started:
        yield started


@pytest.fixture
def simulator(server: KubeApiServer) -> Iterator[AdmissionSimulator]:
    sim = AdmissionSimulator(
        server.url, server.token, quota_pods=3, node_labels={"flavor": "gpu"},
        tolerations=[TOLERATION],
    )  # fmt: skip
    sim.install()
    sim.add_priority_class("low", 10)
    sim.add_priority_class("high", 1000)
    yield sim
    sim.stop()


@pytest.fixture
def gate(server: KubeApiServer, tmp_path: Path) -> Iterator[KueueGate]:
    client = KubeClient(load_config(server.write_kubeconfig(tmp_path / "kubeconfig")))
    gate = KueueGate(client)
    yield gate
    gate.close()
    client.close()


def job(server: KubeApiServer, name: str, **labels: str) -> JobRecord:
    """A job object on the server (so the Workload's owner exists) and its record."""
    document: dict[str, Any] = copy.deepcopy(BASE)
    document["metadata"] = {"name": name, "namespace": "default", "labels": labels}
    document["spec"]["replicaSpecs"][0]["spares"] = 1
    created = server.api.create(server.api.registry.get(*JOBS), "default", document)
    uid = created["metadata"]["uid"]
    return JobRecord("default", name, uid, HyperPodPyTorchJob.model_validate(document))


def queued(server: KubeApiServer, name: str, priority: str) -> JobRecord:
    return job(server, name, **{c.LABEL_KUEUE_QUEUE: "team-a", c.LABEL_KUEUE_PRIORITY: priority})


def workload(server: KubeApiServer, record: JobRecord) -> dict[str, Any]:
    return server.objects.get(WORKLOADS, "default", workload_name(record.name, record.uid))


def settled(gate: KueueGate, server: KubeApiServer) -> None:
    """Wait until the gate's Workload cache holds every Workload as the server has it."""

    def current(cache: Any) -> bool:
        held = {key_of(o): version_of(o) for o in cache.items()}
        return held == {key_of(o): version_of(o) for o in server.objects.list(WORKLOADS)[0]}

    assert gate.workloads is not None and gate.workloads.wait_for(current, timeout=10)


def conditions(found: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {x["type"]: (x["status"], x["reason"]) for x in found["status"]["conditions"]}


def test_a_queued_job_waits_for_its_workload_then_runs_on_the_flavor(
    server: KubeApiServer, simulator: AdmissionSimulator, gate: KueueGate
) -> None:
    low = queued(server, "low", "low")
    first = gate.admission(low, now=NOW)
    assert not first.admitted and first.reason == "Pending"
    found = workload(server, low)
    assert found["spec"]["queueName"] == "team-a"
    assert [(p["name"], p["count"]) for p in found["spec"]["podSets"]] == [("pods", 3)]
    assert (found["spec"]["priorityClassName"], found["spec"]["priority"]) == ("low", 10)
    assert found["spec"]["priorityClassSource"] == "kueue.x-k8s.io/workloadpriorityclass"
    (owner,) = found["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (c.KIND, "low", low.uid)
    assert found["metadata"]["labels"][c.LABEL_KUEUE_JOB_UID] == low.uid
    assert not gate.admission(low, now=NOW).admitted
    simulator.step()
    settled(gate, server)
    admitted = gate.admission(low, now=NOW)
    assert admitted.admitted
    assert admitted.node_selector == {"flavor": "gpu"} and admitted.tolerations == [TOLERATION]


def test_a_higher_priority_job_evicts_and_waits_for_the_released_quota(
    server: KubeApiServer, simulator: AdmissionSimulator, gate: KueueGate
) -> None:
    low, high = queued(server, "low", "low"), queued(server, "high", "high")
    gate.admission(low, now=NOW)
    simulator.step()
    settled(gate, server)
    assert gate.admission(low, now=NOW).admitted
    gate.admission(high, now=NOW)
    simulator.step()
    settled(gate, server)
    evicted = gate.admission(low, now=NOW)
    assert (evicted.admitted, evicted.reason) == (False, "Preempted")
    assert conditions(workload(server, low))["Preempted"] == ("True", "InClusterQueue")
    simulator.step()
    settled(gate, server)
    assert not gate.admission(high, now=NOW).admitted, "low still holds its quota"
    gate.released(low, now=NOW)
    assert "admission" not in workload(server, low)["status"] or not workload(server, low)[
        "status"
    ].get("admission")
    assert conditions(workload(server, low))["QuotaReserved"] == ("False", "Pending")
    simulator.step()
    settled(gate, server)
    assert gate.admission(high, now=NOW).admitted
    assert not gate.admission(low, now=NOW).admitted
    gate.finished(high, succeeded=True, message="All workers exited successfully", now=NOW)
    assert conditions(workload(server, high))["Finished"] == ("True", "Succeeded")
    simulator.step()
    settled(gate, server)
    again = gate.admission(low, now=NOW)
    assert again.admitted, again
    assert conditions(workload(server, low))["Evicted"][0] == "False"


def test_a_job_without_a_queue_is_admitted_with_no_workload(
    server: KubeApiServer, simulator: AdmissionSimulator, gate: KueueGate
) -> None:
    plain = job(server, "plain")
    assert gate.admission(plain, now=NOW).admitted
    assert server.objects.list(WORKLOADS)[0] == []


def test_a_missing_priority_class_keeps_the_job_waiting_naming_the_label(
    server: KubeApiServer, simulator: AdmissionSimulator, gate: KueueGate
) -> None:
    odd = queued(server, "odd", "nonesuch")
    answer = gate.admission(odd, now=NOW)
    assert (answer.admitted, answer.reason) == (False, "PriorityClassNotFound")
    assert c.LABEL_KUEUE_PRIORITY in answer.message and "nonesuch" in answer.message


def test_steps_of_a_queued_job_read_the_caches_not_the_api(
    server: KubeApiServer, simulator: AdmissionSimulator, gate: KueueGate
) -> None:
    """Every controller step asks the gate; once the caches hold the Workload and its flavor,
    asking sends nothing to the API server (before: a GET of each per step)."""
    low = queued(server, "low", "low")
    gate.admission(low, now=NOW)
    simulator.step()
    settled(gate, server)
    server.audit.clear()
    answers = [gate.admission(low, now=NOW) for _ in range(20)]
    assert all(answer.admitted for answer in answers)
    kueue = [e for e in server.audit if e.group == c.KUEUE_GROUP]
    assert kueue == []
