"""`KubernetesBackend`'s API calls, against an in-memory API double (no server, no kubelet).

The double keeps objects by kind and name and answers 404/409 as the API does; a graceful
delete of a scheduled pod only marks it terminating (its kubelet would finish the job), a
delete with grace 0 removes it. The real server and kubelet are in the integration tests.
"""

from __future__ import annotations

import base64
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from trainguard import constants as c
from trainguard.backends.base import PodLaunch
from trainguard.backends.kubernetes import agenttoken
from trainguard.backends.kubernetes.backend import MASTER_PORTS, KubernetesBackend
from trainguard.backends.kubernetes.client import PODS
from trainguard.errors import BackendError, ConflictError, NotFoundError, UsageError
from trainguard.spec.k8s import Container
from trainguard.store.records import PodRecord
from trainguard.testing import FakeClock

Obj = dict[str, Any]
JOB_OBJECT: Obj = {
    "apiVersion": c.API_VERSION,
    "kind": c.KIND,
    "metadata": {"name": "job", "namespace": "default", "uid": "job-uid"},
}


NOW = 1767225600.0  # 2026-01-01T00:00:00Z


def kind_of(res: Any) -> str:
    return str(res._api_info.resource.kind)


@dataclass
class MemoryKube:
    """Just enough of `KubeClient` for the backend: objects in dicts, API status codes."""

    objects: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    deletes: list[tuple[str, str, int | None]] = field(default_factory=list)
    creates: list[str] = field(default_factory=list)
    uid: int = 0
    now: float = NOW
    """The server's wall clock: a graceful delete's ``deletionTimestamp`` is now + grace."""

    def get(self, res: Any, name: str, *, namespace: str | None = None) -> Obj:
        try:
            return self.objects[kind_of(res), namespace or "", name]
        except KeyError:
            raise NotFoundError(f"{kind_of(res)} {name}") from None

    def list(
        self, res: Any, *, namespace: str | None = None, labels: dict[str, Any] | None = None
    ) -> tuple[list[Obj], str]:
        found = [
            o for (kind, ns, _), o in self.objects.items()
            if kind == kind_of(res) and namespace in ("*", ns or None)
            and all(_label_matches(o, k, v) for k, v in (labels or {}).items())
        ]  # fmt: skip
        return found, "1"

    def create(self, res: Any, obj: Obj) -> Obj:
        meta = obj["metadata"]
        key = (kind_of(res), meta.get("namespace") or "", meta["name"])
        if key in self.objects:
            raise ConflictError(f"{key} exists")
        self.uid += 1
        stored = {**obj, "metadata": {**meta, "uid": f"uid-{self.uid}"}}
        self.objects[key] = stored
        self.creates.append(f"{key[0]}/{key[2]}")
        return stored

    def patch(self, res: Any, name: str, patch: Obj, *, namespace: str | None = None) -> Obj:
        obj = self.get(res, name, namespace=namespace)
        obj["metadata"].setdefault("labels", {}).update(patch["metadata"]["labels"])
        return obj

    def delete(
        self, res: Any, name: str, *, namespace: str | None = None, grace: int | None = None
    ) -> None:
        key = (kind_of(res), namespace or "", name)
        obj = self.get(res, name, namespace=namespace)
        self.deletes.append((key[0], name, grace))
        scheduled = bool(obj.get("spec", {}).get("nodeName"))
        if key[0] == "Pod" and scheduled and grace != 0:
            seconds = 30 if grace is None else grace  # terminationGracePeriodSeconds
            moment = datetime.fromtimestamp(self.now + seconds, UTC)
            obj["metadata"]["deletionTimestamp"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            obj["metadata"]["deletionGracePeriodSeconds"] = seconds
        else:
            del self.objects[key]

    def add_node(self, name: str, *, ready: str = "True") -> None:
        self.objects["Node", "", name] = {
            "metadata": {"name": name, "labels": {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}},
            "status": {"conditions": [{"type": "Ready", "status": ready}]},
        }


def _label_matches(obj: Obj, key: str, value: str | None) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return key in labels if value is None else labels.get(key) == value


def launch(pod: str = "job-pods-0", *, token: str = "tok", uid: str = "job-uid") -> PodLaunch:
    return PodLaunch(
        namespace="default", job="job", job_uid=uid, pod=pod, node="n1", replica_spec="pods",
        node_rank=0, spare=False, attempt=0, nproc_per_node="1", nnodes=1, token=token,
        container=Container(name="c", command=["hyperpodrun", "t.py"]),
    )  # fmt: skip


@pytest.fixture
def kube() -> MemoryKube:
    api = MemoryKube()
    api.add_node("n1")
    return api


@pytest.fixture
def backend(kube: MemoryKube) -> KubernetesBackend:
    return KubernetesBackend(client=kube, clock=FakeClock())  # type: ignore[arg-type]


def test_create_pod_makes_secret_service_and_pod_once_per_job(
    kube: MemoryKube, backend: KubernetesBackend
) -> None:
    first = backend.create_pod(launch("job-pods-0"), now=1.0)
    backend.create_pod(launch("job-pods-1"), now=2.0)
    assert kube.creates == [
        "Secret/job-agent-token",
        "Service/job",
        "Pod/job-pods-0-0",
        "Pod/job-pods-1-0",
    ]
    assert (first.name, first.phase, first.port, first.url, first.node) == (
        "job-pods-0-0",
        "Pending",
        None,
        None,
        "n1",
    )
    secret = kube.objects["Secret", "default", "job-agent-token"]
    assert base64.b64decode(secret["data"]["token"]).decode() == "tok"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "job-uid"
    service = kube.objects["Service", "default", "job"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {c.LABEL_JOB: "job"}


def test_a_secret_left_by_an_older_job_of_the_name_is_replaced(
    kube: MemoryKube, backend: KubernetesBackend
) -> None:
    KubernetesBackend(client=kube).create_pod(launch(uid="old", token="old-tok"), now=0.0)  # type: ignore[arg-type]
    backend.create_pod(launch("job-pods-9", uid="new", token="new-tok"), now=1.0)
    secret = kube.objects["Secret", "default", "job-agent-token"]
    assert base64.b64decode(secret["data"]["token"]).decode() == "new-tok"
    assert (
        kube.objects["Service", "default", "job"]["metadata"]["ownerReferences"][0]["uid"] == "new"
    )


def test_a_pod_a_crashed_step_left_behind_is_adopted(
    kube: MemoryKube, backend: KubernetesBackend
) -> None:
    KubernetesBackend(client=kube).create_pod(launch(), now=0.0)  # type: ignore[arg-type]
    assert backend.create_pod(launch(), now=1.0).name == "job-pods-0-0"


def test_a_terminating_pod_of_the_name_is_never_reused(
    kube: MemoryKube, backend: KubernetesBackend
) -> None:
    backend.create_pod(launch(), now=0.0)
    kube.objects["Pod", "default", "job-pods-0-0"]["metadata"]["deletionTimestamp"] = "x"
    with pytest.raises(BackendError, match="terminating"):
        backend.create_pod(launch(), now=1.0)


def record(name: str = "job-pods-0-0") -> PodRecord:
    return PodRecord(
        namespace="default", name=name, job="job", node="n1", replica_spec="pods", node_rank=0
    )


def test_pod_alive_follows_phase_and_existence(
    kube: MemoryKube, backend: KubernetesBackend
) -> None:
    backend.create_pod(launch(), now=0.0)
    pod = kube.objects["Pod", "default", "job-pods-0-0"]
    assert backend.pod_alive(record())
    pod["status"] = {"phase": "Running"}
    assert backend.pod_alive(record())
    pod["status"] = {"phase": "Failed"}
    assert not backend.pod_alive(record())
    assert not backend.pod_alive(record("no-such-pod"))


def test_a_pod_on_a_lost_node_is_forced_once_its_grace_is_over(
    kube: MemoryKube, backend: KubernetesBackend
) -> None:
    backend.create_pod(launch(), now=0.0)
    kube.objects["Pod", "default", "job-pods-0-0"]["spec"]["nodeName"] = "n1"
    backend.delete_pod(record(), grace=30)
    assert kube.deletes == [("Pod", "job-pods-0-0", 30)]
    kube.add_node("n1", ready="Unknown")
    backend.step(now=NOW + 29)
    assert len(kube.deletes) == 1, "within its grace period the kubelet may still stop it"
    backend.step(now=NOW + 30)
    assert kube.deletes[-1] == ("Pod", "job-pods-0-0", 0)
    assert ("Pod", "default", "job-pods-0-0") not in kube.objects
    backend.step(now=NOW + 31)
    assert len(kube.deletes) == 2


def test_an_operator_restart_still_forces_the_pods_its_predecessor_deleted(
    kube: MemoryKube, backend: KubernetesBackend
) -> None:
    """The pods to force are read from their ``deletionTimestamp``: a new backend (a restarted
    operator, a standby taking over) forces them too, and so it does a pod someone else
    deleted (the taint manager: default grace) on a lost node."""
    for name in ("job-pods-0", "job-pods-1"):
        backend.create_pod(launch(name), now=0.0)
        kube.objects["Pod", "default", f"{name}-0"]["spec"]["nodeName"] = "n1"
    backend.delete_pod(record(), grace=5)
    kube.delete(PODS, "job-pods-1-0", namespace="default")
    kube.add_node("n1", ready="False")
    restarted = KubernetesBackend(client=kube, clock=FakeClock())  # type: ignore[arg-type]
    restarted.step(now=NOW + 10)
    assert kube.deletes[-1] == ("Pod", "job-pods-0-0", 0)
    restarted.step(now=NOW + 30)
    assert kube.deletes[-1] == ("Pod", "job-pods-1-0", 0)
    assert [k for k in kube.objects if k[0] == "Pod"] == []


def test_a_pod_on_a_live_node_is_left_to_its_kubelet(
    kube: MemoryKube, backend: KubernetesBackend
) -> None:
    backend.create_pod(launch(), now=0.0)
    kube.objects["Pod", "default", "job-pods-0-0"]["spec"]["nodeName"] = "n1"
    backend.delete_pod(record(), grace=5)
    backend.step(now=NOW + 60)
    assert kube.deletes == [("Pod", "job-pods-0-0", 5)]


def test_deleting_a_gone_pod_is_fine(backend: KubernetesBackend) -> None:
    backend.delete_pod(record("never-made"), grace=1)


def test_release_job_deletes_only_what_the_job_owns_and_is_idempotent(
    kube: MemoryKube, backend: KubernetesBackend
) -> None:
    backend.create_pod(launch(), now=0.0)
    backend.create_pod(launch("job-pods-1"), now=0.0)
    stranger = {
        "metadata": {"name": "other", "namespace": "default", "labels": {c.LABEL_JOB: "job"}}
    }
    kube.objects["Pod", "default", "other"] = stranger
    backend.release_job("default", "job", "job-uid")
    backend.release_job("default", "job", "job-uid")
    left = sorted(f"{kind}/{name}" for kind, _, name in kube.objects if kind != "Node")
    assert left == ["Pod/other"]


def test_mark_node_health_labels_the_node_and_records_an_event(
    kube: MemoryKube, backend: KubernetesBackend
) -> None:
    backend.mark_node_health("n1", c.HEALTH_PENDING_REBOOT, why="fault node-unhealthy")
    assert (
        kube.objects["Node", "", "n1"]["metadata"]["labels"][c.LABEL_NODE_HEALTH]
        == c.HEALTH_PENDING_REBOOT
    )
    [event] = [o for (kind, _, _), o in kube.objects.items() if kind == "Event"]
    assert (event["reason"], event["regarding"]["name"]) == (c.REASON_NODE_HEALTH_CHANGED, "n1")
    assert "fault node-unhealthy" in event["note"]
    assert [n.labels[c.LABEL_NODE_HEALTH] for n in backend.list_nodes()] == [
        c.HEALTH_PENDING_REBOOT
    ]


def test_mark_node_health_refuses_unknown_values_and_nodes(backend: KubernetesBackend) -> None:
    with pytest.raises(UsageError, match="Broken"):
        backend.mark_node_health("n1", "Broken", why="x")
    with pytest.raises(NotFoundError):
        backend.mark_node_health("n9", c.HEALTH_PENDING_REBOOT, why="x")


def test_master_ports_change_with_every_call(backend: KubernetesBackend) -> None:
    ports = [backend.free_port("10.0.0.1") for _ in range(3)]
    assert ports == [MASTER_PORTS[0], MASTER_PORTS[1], MASTER_PORTS[2]]


def test_signal_needs_the_pods_address(backend: KubernetesBackend) -> None:
    with pytest.raises(BackendError, match="no IP"):
        backend.signal(record(), 123, signal.SIGKILL)


def test_the_secret_is_the_stores_a_job_keeps_its_token_and_its_owner_is_the_job(
    kube: MemoryKube, backend: KubernetesBackend
) -> None:
    """One function (`agenttoken.ensure_token_secret`) makes the Secret for the store and the
    backend: same owner reference, and a job's token never silently changes under its agents."""
    backend.create_pod(launch(), now=0.0)
    owner = kube.objects["Secret", "default", "job-agent-token"]["metadata"]["ownerReferences"]
    assert owner == [agenttoken.token_secret(JOB_OBJECT, "tok")["metadata"]["ownerReferences"][0]]
    fresh = KubernetesBackend(client=kube)  # type: ignore[arg-type]
    with pytest.raises(ConflictError, match="another agent token"):
        fresh.create_pod(launch("job-pods-1", token="other-tok"), now=1.0)
    secret = kube.objects["Secret", "default", "job-agent-token"]
    assert base64.b64decode(secret["data"]["token"]).decode() == "tok"
