"""The node health agent on Kubernetes: `KubeNodeSink` against the fake API server.

The sink writes labels and annotations in one merge patch (``None`` deletes), records
``events.k8s.io/v1`` Events regarding the Node, and raises `NotFoundError` for a Node that is
not there; a `HealthAgent` stepping over a kernel log with an Xid 79 line flips the Node's
``node-health-status`` label through it; ``trainguard health-agent --kubeconfig`` refuses an
unknown node or a missing kubeconfig naming the option.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from trainguard import constants as c
from trainguard.backends.kubernetes.client import KubeClient, load_config
from trainguard.backends.kubernetes.nodesink import COMPONENT, KubeNodeSink
from trainguard.cli.main import app
from trainguard.errors import NotFoundError
from trainguard.health import HealthAgent, ScheduledCheck
from trainguard.health.kernel_check import KernelLogCheck
from trainguard.health.kernlog import FileLogSource
from trainguard.testing.kube import KubeApiServer

NODES = ("", "v1", "nodes")
EVENTS = ("", "v1", "events")
"""Storage of both event APIs (the fake keeps core/v1 and events.k8s.io/v1 in one)."""
XID79 = "NVRM: Xid (PCI:0000:53:00): 79, pid=4242, name=python, GPU has fallen off the bus.\n"


@pytest.fixture(scope="module")
def server() -> Iterator[KubeApiServer]:
    with KubeApiServer() as started:
        yield started


@pytest.fixture
def sink(server: KubeApiServer, tmp_path: Path) -> Iterator[KubeNodeSink]:
    for key in (NODES, EVENTS):
        for obj in server.objects.list(key)[0]:
            server.objects.remove(
                key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
            )
    labels = {"keep": "me", c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "labels": labels}}
    server.api.create(server.api.registry.get(*NODES), "", node)
    client = KubeClient(
        load_config(server.write_kubeconfig(tmp_path / "kubeconfig")), field_manager=COMPONENT
    )
    yield KubeNodeSink(client, now=lambda: 1_700_000_000.0)
    client.close()


def stored_node(server: KubeApiServer) -> dict[str, dict[str, str]]:
    return server.objects.get(NODES, "", "node-1")["metadata"]


def node_events(server: KubeApiServer) -> list[dict[str, Any]]:
    """The Events as ``events.k8s.io/v1`` serves them (what the sink wrote)."""
    headers = {"Authorization": f"Bearer {server.token}"}
    found = httpx.get(f"{server.url}/apis/events.k8s.io/v1/events", headers=headers, timeout=10)
    found.raise_for_status()
    items: list[dict[str, Any]] = found.json()["items"]
    return items


def test_patch_sets_and_deletes_keys_in_one_write_keeping_the_rest(
    server: KubeApiServer, sink: KubeNodeSink
) -> None:
    sink.patch_node("node-1", labels={"a": "1"}, annotations={"note": "x"})
    sink.patch_node("node-1", labels={"a": None, c.LABEL_NODE_HEALTH: c.HEALTH_PENDING_REBOOT})
    meta = stored_node(server)
    assert meta["labels"] == {"keep": "me", c.LABEL_NODE_HEALTH: c.HEALTH_PENDING_REBOOT}
    assert meta["annotations"]["note"] == "x"
    assert sink.node_labels("node-1") == meta["labels"]
    assert sink.node_annotations("node-1")["note"] == "x"
    patches = [p for p in server.audit.permissions() if p[2] == "patch"]
    assert patches == [("", "nodes", "patch")], patches


def test_event_regards_the_node_and_names_the_agent(
    server: KubeApiServer, sink: KubeNodeSink
) -> None:
    sink.emit_event("node-1", type="Warning", reason="HealthCheckFailed", message="KernelLog: x")
    (event,) = node_events(server)
    assert event["regarding"] == {"apiVersion": "v1", "kind": "Node", "name": "node-1"}
    assert (event["type"], event["reason"], event["note"]) == (
        "Warning", "HealthCheckFailed", "KernelLog: x",
    )  # fmt: skip
    assert event["reportingController"] == f"trainguard.io/{COMPONENT}"


def test_unknown_node_is_not_found(sink: KubeNodeSink) -> None:
    with pytest.raises(NotFoundError):
        sink.node_labels("node-9")
    with pytest.raises(NotFoundError):
        sink.patch_node("node-9", labels={"a": "1"})


def test_an_xid_line_flips_the_node_label_through_the_api(
    server: KubeApiServer, sink: KubeNodeSink, tmp_path: Path
) -> None:
    log = tmp_path / "kern.log"
    log.write_text("")
    check = KernelLogCheck(FileLogSource(log, from_start=True), boot_id=lambda: "boot-1")
    agent = HealthAgent("node-1", sink, [ScheduledCheck(check, 0.0)], boot_id=lambda: "boot-1")
    agent.step()
    assert stored_node(server)["labels"][c.LABEL_NODE_HEALTH] == c.HEALTH_SCHEDULABLE
    log.write_text(XID79)
    agent.step()
    meta = stored_node(server)
    assert meta["labels"][c.LABEL_NODE_HEALTH] == c.HEALTH_PENDING_REBOOT
    assert meta["labels"][c.LABEL_FAULT_REASONS] == "XidHardwareFailure"
    assert c.ANNOTATION_FAULT_DETAILS in meta["annotations"]
    reasons = {e["reason"] for e in node_events(server)}
    assert {c.REASON_HEALTH_CHECK_FAILED, c.REASON_NODE_HEALTH_CHANGED} <= reasons


def test_cli_refuses_an_unknown_node_and_a_missing_kubeconfig(
    server: KubeApiServer, sink: KubeNodeSink, tmp_path: Path
) -> None:
    kubeconfig = server.write_kubeconfig(tmp_path / "cli-kubeconfig")
    base = ["health-agent", "--checks", "KernelLog", "--kernel-log", str(tmp_path / "k.log")]
    runner = CliRunner()
    unknown = runner.invoke(app, [*base, "--node", "node-9", "--kubeconfig", str(kubeconfig)])
    assert unknown.exit_code != 0 and "--node" in unknown.output and "node-9" in unknown.output
    missing = runner.invoke(app, [*base, "--node", "node-1", "--kubeconfig", "/nope"])
    assert missing.exit_code != 0 and "--kubeconfig" in missing.output
