"""Issue 16 item 3 on the test cluster: task governance through Kueue's Workloads.

The fake cluster runs the `AdmissionSimulator` (Kueue's CRDs and a ClusterQueue with a quota of
2 pods, one quickstart job's worth) beside ``trainguard operator``; jobs are applied with the
real ``kubectl``, labelled ``kueue.x-k8s.io/queue-name`` (and ``kueue.x-k8s.io/priority-class``).

- Quota: the first job runs, the second waits with no pod and ``Suspended=True``, and runs
  once the first one's Workload is ``Finished``.
- Preemption: a more important job evicts a running one; its pods are stopped (no restart is
  counted), the important job runs, and the evicted one resumes from its newest checkpoint.
  A Kubernetes pod's memory tier is an ``emptyDir``, deleted with the pod, so a stopped job
  resumes from the durable tier (docs/kubernetes.md); this job writes it as often as its
  memory tier, and the durable save of the last interval may still be in flight when the
  pods stop, so the bound checked is two intervals, not the issue's one (known gap: the
  local backend, whose node memory outlives the pods, meets one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.scenarios.driver import losses, min_step
from tests.scenarios.kube import KubeDriver, fake_cluster
from trainguard import constants as c
from trainguard.testing.kueue import AdmissionSimulator

pytestmark = pytest.mark.slow

NODES = 3
MEMORY_EVERY = 10
FLAVOR_LABEL = {"trainguard.io/pool": "training"}


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeDriver]:
    with fake_cluster(tmp_path, NODES) as (cluster, driver):
        for node in sorted(cluster.kubelets):
            key, value = next(iter(FLAVOR_LABEL.items()))
            driver.kubectl("label", "node", node, f"{key}={value}")
        simulator = AdmissionSimulator(
            cluster.url, cluster.server.token, quota_pods=2, node_labels=FLAVOR_LABEL
        )
        simulator.install()
        simulator.add_priority_class("low", 10)
        simulator.add_priority_class("high", 1000)
        driver.start()
        simulator.start()
        try:
            yield driver
        finally:
            for name in ("first", "second", "low", "high"):
                driver.kubectl("delete", "hpjob", name, "--ignore-not-found", "--timeout=60s",
                               check=False)  # fmt: skip
            simulator.stop()
            driver.close()


def submit(kube: KubeDriver, name: str, *, steps: int, priority: str | None = None) -> None:
    args = (f"--checkpoint-dir=checkpoints/{name}", f"--durable-every={MEMORY_EVERY}")
    manifest = kube.manifest(steps=steps, args=args)
    labels = {c.LABEL_KUEUE_QUEUE: "team-a"}
    if priority is not None:
        labels[c.LABEL_KUEUE_PRIORITY] = priority
    manifest["metadata"] = {"name": name, "labels": labels}
    container = manifest["spec"]["replicaSpecs"][0]["template"]["spec"]["containers"][0]
    container["workingDir"] = str(kube.work)
    path = kube.work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    kube.kubectl("apply", "-f", str(path))


def job(kube: KubeDriver, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(kube.kubectl("get", "hpjob", name, "-o", "json"))
    return found


def conditions(kube: KubeDriver, name: str) -> dict[str, tuple[str, str]]:
    status = job(kube, name).get("status") or {}
    return {x["type"]: (x["status"], x["reason"]) for x in status.get("conditions") or []}


def pods(kube: KubeDriver, name: str) -> dict[str, dict[str, Any]]:
    found = json.loads(kube.kubectl("get", "pods", "-l", f"{c.LABEL_JOB}={name}", "-o", "json"))
    return {
        p["metadata"]["name"]: p
        for p in found["items"]
        if not p["metadata"].get("deletionTimestamp")
    }


def step_of(kube: KubeDriver, name: str) -> int:
    lines: list[str] = []
    for pod in pods(kube, name):
        lines.extend(kube.kubectl("logs", pod, check=False).splitlines())
    return min_step(losses(lines))


def wait(test: Any, *, timeout: float, what: str, kube: KubeDriver) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{kube.operator_log()}"
        time.sleep(0.25)


def ended(kube: KubeDriver, name: str) -> str | None:
    found = conditions(kube, name)
    return next((t for t in ("Completed", "Failed") if found.get(t, ("",))[0] == "True"), None)


def workload_finished(kube: KubeDriver, name: str) -> bool:
    found = json.loads(kube.kubectl("get", "workloads", "-o", "json"))
    for item in found["items"]:
        owner = item["metadata"]["ownerReferences"][0]["name"]
        states = {
            x["type"]: x["status"] for x in (item.get("status") or {}).get("conditions") or []
        }
        if owner == name:
            return states.get("Finished") == "True"
    return False


def test_quota_holds_the_second_job_until_the_first_finishes(kube: KubeDriver) -> None:
    submit(kube, "first", steps=30)
    wait(lambda: len(pods(kube, "first")) == 2, timeout=60, what="first's pods", kube=kube)
    submit(kube, "second", steps=30)
    wait(lambda: "Suspended" in conditions(kube, "second"), timeout=30, what="second held",
         kube=kube)  # fmt: skip
    assert conditions(kube, "second")["Suspended"][0] == "True"
    assert pods(kube, "second") == {}
    for pod in pods(kube, "first").values():
        assert pod["spec"]["nodeSelector"] == FLAVOR_LABEL
    wait(lambda: ended(kube, "first") is not None, timeout=180, what="first's end", kube=kube)
    assert ended(kube, "first") == "Completed"
    wait(lambda: workload_finished(kube, "first"), timeout=30, what="Finished", kube=kube)
    wait(lambda: ended(kube, "second") is not None, timeout=240, what="second's end", kube=kube)
    assert ended(kube, "second") == "Completed"
    assert conditions(kube, "second")["Suspended"] == ("False", c.REASON_RESUMED)


def test_higher_priority_job_evicts_and_the_evicted_one_resumes(kube: KubeDriver) -> None:
    submit(kube, "low", steps=150, priority="low")
    wait(lambda: step_of(kube, "low") >= 2 * MEMORY_EVERY + 5, timeout=180, what="low trains",
         kube=kube)  # fmt: skip
    before = job(kube, "low")["status"].get("restartCount", 0)
    submit(kube, "high", steps=20, priority="high")
    last_seen = 0
    deadline = time.monotonic() + 60
    while conditions(kube, "low").get("Suspended", ("",))[0] != "True":
        last_seen = max(last_seen, step_of(kube, "low"))
        assert time.monotonic() < deadline, kube.operator_log()
    assert conditions(kube, "low")["Suspended"] == ("True", "Preempted")
    evicted = job(kube, "low")["status"]
    assert evicted.get("restartCount", 0) == before, f"an eviction is not a restart: {evicted}"
    wait(lambda: not pods(kube, "low"), timeout=60, what="low's pods stopped", kube=kube)
    wait(lambda: ended(kube, "high") is not None, timeout=240, what="high's end", kube=kube)
    assert ended(kube, "high") == "Completed"
    wait(lambda: ended(kube, "low") is not None, timeout=300, what="low's end", kube=kube)
    status = job(kube, "low")["status"]
    assert ended(kube, "low") == "Completed", status
    # a restart after the resume (a worker failing to boot on a loaded machine) is a fault of
    # its own; the eviction itself counted none (checked above)
    resumed = [r for r in status.get("resumes") or [] if r.get("step")]
    assert resumed, status.get("resumes")
    assert resumed[-1]["tier"] == "durable"
    assert resumed[-1]["step"] >= last_seen - 2 * MEMORY_EVERY, (resumed, last_seen)
