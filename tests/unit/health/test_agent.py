"""The health agent's step: labels flip on a fault, hold, recover after passing probes, and
share the node label with people and the deep-check runner."""

from __future__ import annotations

import json
from pathlib import Path

from trainguard import constants as c
from trainguard.health.agent import HealthAgent, ScheduledCheck
from trainguard.health.kernel_check import KernelLogCheck
from trainguard.health.kernlog import FileLogSource
from trainguard.health.resources import DiskCheck
from trainguard.health.system import DiskUsage, file_boot_id
from trainguard.testing import FakeClock, InMemoryNodeSink

GIB = 1024**3
XID = "[ 7.1] NVRM: Xid (PCI:0000:53:00): {code}, pid=4242, name=python, Ch 00000010\n"


class Disk:
    """A file system whose free space a test sets."""

    def __init__(self) -> None:
        self.free = 50 * GIB

    def __call__(self, path: str) -> DiskUsage:
        return DiskUsage(100 * GIB, self.free, 1000, 900)


def make_agent(sink: InMemoryNodeSink, clock: FakeClock, disk: Disk) -> HealthAgent:
    check = DiskCheck(["/ckpt"], min_free_fraction=0.05, min_free_bytes=0, usage=disk)
    return HealthAgent("n1", sink, [ScheduledCheck(check, 10.0)], clock=clock, recover_after=3)


def health(sink: InMemoryNodeSink) -> str | None:
    return sink.node_labels("n1").get(c.LABEL_NODE_HEALTH)


def test_disk_fault_flips_the_label_and_recovers_only_after_three_passes() -> None:
    sink = InMemoryNodeSink({"n1": {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}})
    clock, disk = FakeClock(), Disk()
    agent = make_agent(sink, clock, disk)
    agent.step()
    assert health(sink) == c.HEALTH_SCHEDULABLE and sink.events == []

    disk.free = 1 * GIB
    clock.advance(10)
    agent.step()
    labels = sink.node_labels("n1")
    assert labels[c.LABEL_NODE_HEALTH] == c.HEALTH_PENDING_REBOOT
    assert labels[c.LABEL_FAULT_TYPES] == "DiskPressure"
    assert labels[c.LABEL_FAULT_REASONS] == "DiskSpaceLow"
    details = json.loads(sink.node_annotations("n1")[c.ANNOTATION_FAULT_DETAILS])
    assert details[0]["reason"] == "DiskSpaceLow" and details[0]["recoveredAt"] is None
    assert [e.reason for e in sink.events] == [
        c.REASON_HEALTH_CHECK_FAILED,
        c.REASON_NODE_HEALTH_CHANGED,
    ]
    # events come after the patch that they announce
    kinds = [entry[0] for entry in sink.history]
    assert kinds.index("event") > kinds.index("patch")

    clock.advance(5)  # not due yet: nothing probed
    assert agent.step().reports == []

    disk.free = 50 * GIB
    for _ in range(2):
        clock.advance(10)
        agent.step()
        assert health(sink) == c.HEALTH_PENDING_REBOOT  # hysteresis holds the fault
    clock.advance(10)
    agent.step()
    labels = sink.node_labels("n1")
    assert labels[c.LABEL_NODE_HEALTH] == c.HEALTH_SCHEDULABLE
    assert c.LABEL_FAULT_REASONS not in labels and c.LABEL_FAULT_TYPES not in labels
    details = json.loads(sink.node_annotations("n1")[c.ANNOTATION_FAULT_DETAILS])
    assert details[0]["recoveredAt"] is not None
    assert sink.events_for("n1", c.REASON_HEALTH_CHECK_RECOVERED)


def test_a_failure_during_recovery_restarts_the_count() -> None:
    sink = InMemoryNodeSink({"n1": {}})
    clock, disk = FakeClock(), Disk()
    agent = make_agent(sink, clock, disk)
    disk.free = GIB
    agent.step()
    for free in (50, 50, 1, 50, 50):
        disk.free = free * GIB
        clock.advance(10)
        agent.step()
        assert health(sink) == c.HEALTH_PENDING_REBOOT
    clock.advance(10)
    agent.step()
    assert health(sink) == c.HEALTH_SCHEDULABLE


def test_agent_never_lowers_a_label_a_person_set() -> None:
    sink = InMemoryNodeSink({"n1": {c.LABEL_NODE_HEALTH: c.HEALTH_PENDING_REPLACEMENT}})
    clock, disk = FakeClock(), Disk()
    agent = make_agent(sink, clock, disk)
    for _ in range(5):
        agent.step()
        clock.advance(10)
    assert health(sink) == c.HEALTH_PENDING_REPLACEMENT
    # once a person puts it back, the agent adopts the label and can raise it again
    sink.patch_node("n1", labels={c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE})
    agent.step()
    disk.free = GIB
    clock.advance(10)
    agent.step()
    assert health(sink) == c.HEALTH_PENDING_REBOOT


def test_kernel_xid_faults_latch_until_reboot_and_notices_do_not_cordon(tmp_path: Path) -> None:
    log, boot = tmp_path / "kern.log", tmp_path / "boot_id"
    log.write_text("boot noise\n")
    boot.write_text("boot-1\n")
    sink = InMemoryNodeSink({"n1": {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}})
    clock = FakeClock()
    check = KernelLogCheck(FileLogSource(log), boot_id=file_boot_id(boot))
    agent = HealthAgent(
        "n1", sink, [ScheduledCheck(check, 1.0)], clock=clock, boot_id=file_boot_id(boot)
    )
    agent.step()
    with log.open("a") as fh:
        fh.write(XID.format(code=13))
    clock.advance(1)
    agent.step()
    assert health(sink) == c.HEALTH_SCHEDULABLE
    notice = sink.events_for("n1", c.REASON_HEALTH_CHECK_NOTICE)
    assert len(notice) == 1 and "XidUserAppError" in notice[0].message

    with log.open("a") as fh:
        fh.write(XID.format(code=79))
    clock.advance(1)
    agent.step()
    assert health(sink) == c.HEALTH_PENDING_REBOOT
    assert sink.node_labels("n1")[c.LABEL_FAULT_REASONS] == "XidHardwareFailure"
    for _ in range(5):  # the Xid is printed once but the GPU stays gone: latched for the boot
        clock.advance(1)
        agent.step()
    assert health(sink) == c.HEALTH_PENDING_REBOOT

    boot.write_text("boot-2\n")  # the node rebooted: the reboot was the remedy
    clock.advance(1)
    agent.step()
    assert health(sink) == c.HEALTH_SCHEDULABLE
    details = json.loads(sink.node_annotations("n1")[c.ANNOTATION_FAULT_DETAILS])
    assert all(d["recoveredAt"] is not None for d in details)

    with log.open("a") as fh:  # the same fault after the reboot: the reboot did not fix it
        fh.write(XID.format(code=79))
    clock.advance(1)
    agent.step()
    assert health(sink) == c.HEALTH_PENDING_REPLACEMENT
    check.source.close()  # type: ignore[attr-defined]


def test_a_restarted_agent_keeps_holding_its_faults(tmp_path: Path) -> None:
    log, boot = tmp_path / "kern.log", tmp_path / "boot_id"
    log.write_text("")
    boot.write_text("boot-1\n")
    sink = InMemoryNodeSink({"n1": {}})
    clock = FakeClock()

    def agent() -> tuple[HealthAgent, FileLogSource]:
        source = FileLogSource(log)
        check = KernelLogCheck(source, boot_id=file_boot_id(boot))
        return HealthAgent("n1", sink, [check], clock=clock, boot_id=file_boot_id(boot)), source

    first, source = agent()
    first.step()
    with log.open("a") as fh:
        fh.write(XID.format(code=48))
    clock.advance(30)
    first.step()
    assert health(sink) == c.HEALTH_PENDING_REBOOT
    source.close()

    second, source = agent()  # starts at the log's end: it never sees the Xid line again
    for _ in range(4):
        clock.advance(30)
        second.step()
    assert health(sink) == c.HEALTH_PENDING_REBOOT
    source.close()


def test_a_probe_that_cannot_run_changes_nothing_but_is_announced_once() -> None:
    sink = InMemoryNodeSink({"n1": {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}})
    clock = FakeClock()
    check = DiskCheck(["/no/such/path/trainguard"])
    agent = HealthAgent("n1", sink, [ScheduledCheck(check, 1.0)], clock=clock)
    for _ in range(3):
        result = agent.step()
        clock.advance(1)
    assert result.reports[0].status.value == "Error"
    assert health(sink) == c.HEALTH_SCHEDULABLE
    assert len(sink.events_for("n1", c.REASON_HEALTH_CHECK_ERROR)) == 1
