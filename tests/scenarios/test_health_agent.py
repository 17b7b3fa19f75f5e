"""Issue 16 item 2 on the test cluster: a health agent per node (as the chart's DaemonSet runs
``trainguard health-agent --in-cluster``; here ``--kubeconfig``), each following a kernel log
of its own. An Xid 79 line appended to the log of a node the job runs on makes that node's
agent label it ``UnschedulablePendingReboot`` through the API, and the operator moves the
job's pod off it — the same label flip that drives the local backend (``test_scenarios``'
node-label scenario, there written by hand).
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scenarios.kube import TRAINGUARD, KubeDriver, fake_cluster, running
from trainguard import constants as c

pytestmark = pytest.mark.slow

NODES = 3
STEPS = 240
"""Long enough (24 s of steps) that a loaded machine still finds it training after step 20."""
XID79 = "NVRM: Xid (PCI:0000:53:00): 79, pid=4242, name=python, GPU has fallen off the bus.\n"


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeDriver]:
    with fake_cluster(tmp_path, NODES, operator_rbac=False) as (_, driver):
        yield from running(driver)


@pytest.fixture
def kernel_logs(kube: KubeDriver) -> Iterator[dict[str, Path]]:
    """One health agent per node; node -> the kernel log its agent follows."""
    logs = {f"node-{i}": kube.work / f"kern-node-{i}.log" for i in range(NODES)}
    agents = []
    for node, log in logs.items():
        log.write_text("")
        command = [
            TRAINGUARD, "health-agent", "--kubeconfig", str(kube.kubeconfig),
            "--checks", "KernelLog", "--kernel-log", str(log), "--kernel-interval", "0.2",
        ]  # fmt: skip
        out = (kube.work / f"health-{node}.log").open("wb")
        env = {**kube.env, c.ENV_NODE_NAME: node}  # --node from the downward API's env
        agents.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env))
        out.close()
    try:
        yield logs
    finally:
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
        for agent in agents:
            agent.wait(timeout=30)


def test_xid_line_seen_by_the_health_agent_moves_the_job_to_the_spare(
    kube: KubeDriver, kernel_logs: dict[str, Path]
) -> None:
    kube.submit(kube.manifest(steps=STEPS))
    kube.wait_step(20)
    placed = kube.wait_view(lambda v: len(v.pods) == 2, timeout=60, what="two pods").pods
    node = placed[min(placed)]
    with kernel_logs[node].open("a") as log:
        log.write(XID79)
    moved = kube.wait_view(
        lambda v: len(v.pods) == 2 and node not in v.pods.values(),
        timeout=60, what=f"both pods off {node}",
    )  # fmt: skip
    labels = kube.kubectl("get", "node", node, "-o", "jsonpath={.metadata.labels}")
    assert c.HEALTH_PENDING_REBOOT in labels and "XidHardwareFailure" in labels, labels
    view = kube.wait_final()
    assert view.final() == "Completed", (view, kube.operator_log())
    assert any(m.startswith(f"Found unhealthy node {node}") for m in view.messages("NodeFault"))
    assert view.status["latestFaultyPodInstanceList"]["faultyInstanceIdList"] == [node]
    assert node not in moved.pods.values()
