"""``trainguard health deep --kubeconfig``: the chart's deep-health Job, against the fake API.

The deep check marks the Node ``deep-health-check-status=InProgress`` and
``node-health-status=Unschedulable`` through the Kubernetes API, runs InstanceStress (a short
burn on this machine's devices: CPU here), then writes ``Passed`` and restores the previous
health value, with Events regarding the Node — the same protocol as on the local cluster. Every
request it sent must be granted by the chart's health-agent roles (the Job runs as that
ServiceAccount; the DaemonSet's agent writes through the same `KubeNodeSink`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helm.chart import NAMESPACE, render
from tests.helm.rbac import grants_of, missing, needed
from tests.scenarios.rbac import TRAINGUARD_AGENT as LIGHTKUBE
from trainguard import constants as c
from trainguard.cli.main import app
from trainguard.testing.kube import KubeApiServer

pytestmark = pytest.mark.slow

NODES = ("", "v1", "nodes")


def test_deep_check_writes_the_node_labels_through_the_api(tmp_path: Path) -> None:
    with KubeApiServer() as server:
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "node-1",
                             "labels": {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}}}  # fmt: skip
        server.api.create(server.api.registry.get(*NODES), "", node)
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        result = CliRunner().invoke(
            app,
            ["health", "deep", "--node", "node-1", "--checks", c.DEEP_CHECK_STRESS,
             "--duration", "0.2", "--kubeconfig", str(kubeconfig), "-o", "json"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["node-1"]["status"] == c.DEEP_HEALTH_PASSED
        labels = server.objects.get(NODES, "", "node-1")["metadata"]["labels"]
        assert labels[c.LABEL_DEEP_HEALTH] == c.DEEP_HEALTH_PASSED
        assert labels[c.LABEL_NODE_HEALTH] == c.HEALTH_SCHEDULABLE
        reasons = [e.get("reason") for e in server.objects.list(("", "v1", "events"))[0]]
        assert c.REASON_DEEP_HEALTH_STARTED in reasons and c.REASON_DEEP_HEALTH_PASSED in reasons
        agent = "tg-trainguard-health-agent"
        grants = grants_of(render(), account=agent, namespace=NAMESPACE)
        used = {needed(e) for e in server.audit.entries() if e.user_agent.startswith(LIGHTKUBE)}
        assert used and not missing(grants, used), missing(grants, used)
        unknown = CliRunner().invoke(
            app, ["health", "deep", "--node", "node-9", "--kubeconfig", str(kubeconfig)]
        )
        assert unknown.exit_code != 0 and "--node" in unknown.output
