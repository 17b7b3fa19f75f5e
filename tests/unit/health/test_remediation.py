"""The whole path of issue 7: a kernel Xid line on a node running a job -> the health agent
flips the node's label in the store -> the controller moves that rank to the spare."""

from __future__ import annotations

from pathlib import Path

from tests.unit.controller.harness import Harness, manifest
from trainguard import constants as c
from trainguard.backends.local.nodesink import StoreNodeSink
from trainguard.controller.state import JobPhase
from trainguard.health.agent import HealthAgent
from trainguard.health.kernel_check import KernelLogCheck
from trainguard.health.kernlog import FileLogSource
from trainguard.health.system import file_boot_id


def test_xid_on_a_busy_node_moves_its_rank_to_the_spare(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=4)
    document = manifest()
    document["spec"]["replicaSpecs"][0]["spares"] = 1
    h.submit(document)
    h.run_until(JobPhase.RUNNING)
    spare = next(p for p in h.pods() if p.spare)
    bad_node = h.store.list_pods("default", "train")[1].node

    log = tmp_path / "kern.log"
    log.write_text("")
    boot = file_boot_id(tmp_path / "boot_id", create=True)
    source = FileLogSource(log)
    agent = HealthAgent(
        bad_node,
        StoreNodeSink(h.store),
        [KernelLogCheck(source, boot_id=boot)],
        clock=h.clock,
        boot_id=boot,
    )
    agent.step()
    with log.open("a") as fh:
        fh.write("NVRM: Xid (PCI:0000:53:00): 79, pid=9, GPU has fallen off the bus.\n")
    h.clock.advance(30)
    agent.step()
    assert h.store.get_node(bad_node).labels[c.LABEL_NODE_HEALTH] == c.HEALTH_PENDING_REBOOT

    h.run_until(JobPhase.RUNNING)
    promoted = next(p for p in h.pods() if p.name == spare.name)
    assert (promoted.spare, promoted.node_rank) == (False, 1)
    assert bad_node not in {p.node for p in h.pods()}
    assert ("Warning", "NodeFault", f"Found unhealthy node {bad_node}") in h.node_events()
    source.close()
