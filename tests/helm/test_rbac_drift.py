"""RBAC drift: every request the operator sends is granted by the chart's roles, and no more.

The operator runs as the chart's Deployment runs it — its rendered arguments (one
``--namespace`` per watched namespace, the Lease in the release namespace), two replicas — on a
3-node `TestCluster`, through the scenario suite's path (`tests.scenarios.kube.KubeDriver`):
a job created with kubectl and queued through Kueue (the `AdmissionSimulator` admits its
Workload; the simulator's requests carry httpx's own User-Agent), a worker killed by a fault
request, a node labelled for reboot (the job moves to the spare), the leader SIGKILLed (the
standby takes the Lease and adopts the job), and the job deleted (finalizer, teardown); then a
short queued job runs to its end (its Workload marked Finished). Events are written all along.
The fake API server's audit records each request's verb, group, resource, subresource,
namespace and User-Agent; the operator's are lightkube's (``python-httpx2/``). ``trainguard
fault inject`` is a user's command with the user's credentials, not the operator's: it runs
with another User-Agent here so its requests are not taken for the operator's.

The test fails if a request is not granted, and reports (without failing) grants never used:
some are needed only on paths this run does not take (a 409 on the status write re-reads the
job with ``get``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.helm.chart import NAMESPACE, named, render
from tests.helm.rbac import grants_of, missing, needed, unused
from tests.ports import free_port
from tests.scenarios.kube import LEASE_SECONDS, TRAINGUARD, KubeDriver
from tests.scenarios.rbac import TRAINGUARD_AGENT
from trainguard import constants as c
from trainguard.testing.kube.cluster import TestCluster
from trainguard.testing.kueue import AdmissionSimulator

pytestmark = pytest.mark.slow

OPERATOR = "tg-trainguard-operator"
LOCAL_FLAGS = ("--metrics-port", "--health-port", "--callback-port", "--bind", "--lease-seconds")
"""Chart arguments replaced on the test cluster (ports taken on a shared machine, the Lease
shortened so the takeover fits a test)."""
LEASE = c.CONTROLLER_LEASE
FAULT_CLI_AGENT = "trainguard-fault-cli-test"
_FAULT_CLI = (
    "import sys, httpx2._client as http\n"
    f"http.USER_AGENT = {FAULT_CLI_AGENT!r}\n"
    "from trainguard.cli.main import main\n"
    "sys.argv[0] = 'trainguard'\n"
    "main()\n"
)


class ChartOperatorDriver(KubeDriver):
    """`KubeDriver` whose operator runs with the chart's Deployment arguments."""

    def __init__(self, kubeconfig: Path, work: Path, cluster: TestCluster, args: list[str]):
        super().__init__(kubeconfig, work, cluster)
        self.chart_args = [a for a in args if not a.startswith(LOCAL_FLAGS)]
        self.killed_holder = ""

    def start(self) -> None:
        index = len(self.operators)
        log = (self.work / f"operator-{index}.log").open("wb")
        command = [
            TRAINGUARD, "operator", "--kubeconfig", str(self.kubeconfig), *self.chart_args,
            "--bind=127.0.0.1", "--metrics-port=0", f"--health-port={free_port()}",
            f"--callback-port={free_port()}", f"--lease-seconds={LEASE_SECONDS}",
        ]  # fmt: skip
        self.operators.append(
            subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        )
        log.close()

    def kill_controller(self) -> None:
        """SIGKILL the replica holding the Lease (its holder name carries its pid)."""
        lease = json.loads(self.kubectl("get", "lease", LEASE, "-n", NAMESPACE, "-o", "json"))
        holder = lease["spec"]["holderIdentity"]
        (leader,) = [p for p in self.operators if f"-{p.pid}-" in holder and p.poll() is None]
        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=30)
        self.killed_holder = holder

    def inject(self, fault: str) -> None:
        done = subprocess.run(
            [sys.executable, "-c", _FAULT_CLI, "fault", "inject", "quickstart", fault,
             "--no-wait", "--kubeconfig", str(self.kubeconfig)],
            capture_output=True, text=True, timeout=120, check=False, env=self.env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]


def _apply_namespace_and_crd(driver: KubeDriver) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    driver.kubectl("apply", "-f", "-", stdin=json.dumps(namespace))
    crd = subprocess.run([TRAINGUARD, "crd"], capture_output=True, text=True, check=True)
    driver.kubectl("apply", "-f", "-", stdin=crd.stdout)


def _holder(driver: KubeDriver) -> str:
    lease = json.loads(driver.kubectl("get", "lease", LEASE, "-n", NAMESPACE, "-o", "json"))
    return str(lease["spec"].get("holderIdentity") or "")


def _start_kueue(driver: KubeDriver, cluster: TestCluster) -> AdmissionSimulator:
    """Kueue's CRDs, a flavor over every node, a priority class, and the admission loop."""
    for node in sorted(cluster.kubelets):
        driver.kubectl("label", "node", node, "trainguard.io/pool=training")
    simulator = AdmissionSimulator(
        cluster.url, cluster.server.token, quota_pods=4,
        node_labels={"trainguard.io/pool": "training"},
    )  # fmt: skip
    simulator.install()
    simulator.add_priority_class("normal", 100)
    return simulator.start()


def _queued(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` labelled for Kueue (queue and priority class)."""
    labels = {c.LABEL_KUEUE_QUEUE: "team-a", c.LABEL_KUEUE_PRIORITY: "normal"}
    return {**manifest, "metadata": {**manifest["metadata"], "labels": labels}}


def _wait_workload_finished(driver: KubeDriver, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = json.loads(driver.kubectl("get", "workloads.kueue.x-k8s.io", "-o", "json"))
        conditions = [c for w in found["items"] for c in w.get("status", {}).get("conditions", [])]
        if any(c["type"] == "Finished" and c["status"] == "True" for c in conditions):
            return
        assert time.monotonic() < deadline, f"no Workload marked Finished: {found['items']}"
        time.sleep(0.5)


def _run_scenarios(driver: ChartOperatorDriver) -> None:
    driver.submit(_queued(driver.manifest(steps=3000)))  # deleted long before the end
    driver.wait_step(10)
    before = driver.view().status.get("restartCount", 0)
    driver.inject("kill-worker:rank=1,at-step=15")
    driver.wait_view(lambda v: v.status.get("restartCount", 0) > before, timeout=90,
                     what="the fault's restart")  # fmt: skip
    placed = driver.wait_view(lambda v: len(v.pods) == 2, timeout=60, what="two pods").pods
    node = placed[min(placed)]
    driver.label_node(node, c.LABEL_NODE_HEALTH, c.HEALTH_PENDING_REBOOT)
    driver.wait_view(lambda v: len(v.pods) == 2 and node not in v.pods.values(), timeout=90,
                     what=f"both pods off {node}")  # fmt: skip
    driver.kill_controller()  # the leader: the standby takes the Lease and adopts the job
    deadline = time.monotonic() + 60
    while _holder(driver) == driver.killed_holder:
        assert time.monotonic() < deadline, "the standby did not take the Lease"
        time.sleep(0.5)
    driver.start()  # the Deployment restarts the killed replica
    driver.delete_job()
    driver.wait_released(timeout=90)
    # a short queued job that ends: its Workload is marked Finished (workloads/status)
    driver.submit(_queued(driver.manifest(steps=5, args=("--checkpoint-dir=checkpoints/short",))))
    assert driver.wait_final(timeout=120).final() == "Completed"
    _wait_workload_finished(driver)


def test_the_operator_uses_only_what_the_chart_grants(tmp_path: Path) -> None:
    objects = render()
    args = named(objects, "Deployment", OPERATOR)["spec"]["template"]["spec"]["containers"][0]
    grants = grants_of(objects, account=OPERATOR, namespace=NAMESPACE)
    work = tmp_path / "work"
    work.mkdir()
    with TestCluster(nodes=3, workdir=tmp_path / "cluster") as cluster:
        driver = ChartOperatorDriver(cluster.kubeconfig, work, cluster, args["args"])
        try:
            _apply_namespace_and_crd(driver)
            simulator = _start_kueue(driver, cluster)
            driver.start()
            driver.start()  # two replicas, as the Deployment runs
            _run_scenarios(driver)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- operator logs ---\n{driver.operator_log()}") from exc
        finally:
            driver.close()
            simulator.stop()
        entries = cluster.server.audit.entries()
    operator = {needed(e) for e in entries if e.user_agent.startswith(TRAINGUARD_AGENT)}
    assert any(e.user_agent == FAULT_CLI_AGENT for e in entries), "the fault CLI ran"
    used = {g.resource for g in operator}
    assert used >= {"hyperpodpytorchjobs", "pods", "leases", "events", "workloads"}
    not_granted = missing(grants, operator)
    assert not not_granted, "the chart's roles do not grant: " + "; ".join(map(str, not_granted))
    never_used = unused(grants, operator)
    if never_used:
        warnings.warn(
            "granted but unused in this run: " + "; ".join(map(str, never_used)), stacklevel=1
        )
    print("granted but unused:", *map(str, never_used), sep="\n  ")
