"""Health checks against real conditions: a tmpfs filled to the threshold, zombie children
that are never reaped, and the agent writing through the local cluster's SQLite store."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainguard import constants as c
from trainguard.backends.local.nodesink import StoreNodeSink
from trainguard.health.agent import HealthAgent, ScheduledCheck
from trainguard.health.report import HealthStatus
from trainguard.health.resources import DiskCheck, ZombieCheck
from trainguard.health.system import zombie_processes
from trainguard.store.records import NodeRecord
from trainguard.store.sqlite import SqliteStore
from trainguard.testing import FakeClock

KIB = 1024


@pytest.fixture
def small_tmpfs() -> Iterator[Path]:
    """A real 1 MiB tmpfs, or a skip where mounting is not permitted."""
    mountpoint = Path(tempfile.mkdtemp(prefix="tg-tmpfs-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=64", "tmpfs", str(mountpoint)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
        mountpoint.rmdir()


def fill(directory: Path, *, leave_free: int) -> None:
    """Write files until at most ``leave_free`` bytes are free on ``directory``'s file system."""
    index = 0
    while True:
        st = os.statvfs(directory)
        free = st.f_bavail * st.f_frsize
        if free <= leave_free:
            return
        chunk = min(free - leave_free, 64 * KIB)
        try:
            (directory / f"fill-{index}").write_bytes(b"\0" * max(chunk, st.f_frsize))
        except OSError:
            return
        index += 1


def test_a_real_filled_tmpfs_flips_the_label_in_the_store_and_recovers(
    small_tmpfs: Path, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    store.save_node(NodeRecord("node-1", labels={c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}))
    sink = StoreNodeSink(store)
    clock = FakeClock()
    check = DiskCheck([str(small_tmpfs)], min_free_fraction=0.10, min_free_bytes=0)
    agent = HealthAgent("node-1", sink, [ScheduledCheck(check, 10.0)], clock=clock)
    agent.step()
    assert store.get_node("node-1").labels[c.LABEL_NODE_HEALTH] == c.HEALTH_SCHEDULABLE

    fill(small_tmpfs, leave_free=50 * KIB)  # < 10% of 1 MiB
    clock.advance(10)
    result = agent.step()
    assert result.reports[0].reason == "DiskSpaceLow"
    node = store.get_node("node-1")
    assert node.labels[c.LABEL_NODE_HEALTH] == c.HEALTH_PENDING_REBOOT
    assert node.labels[c.LABEL_FAULT_REASONS] == "DiskSpaceLow"
    assert c.ANNOTATION_FAULT_DETAILS in node.annotations
    reasons = [e.reason for e in store.list_events(kind="Node", name="node-1")]
    assert c.REASON_NODE_HEALTH_CHANGED in reasons

    for leftover in small_tmpfs.iterdir():
        leftover.unlink()
    for _ in range(3):
        clock.advance(10)
        agent.step()
    assert store.get_node("node-1").labels[c.LABEL_NODE_HEALTH] == c.HEALTH_SCHEDULABLE


def test_inodes_exhausted_on_a_real_tmpfs(small_tmpfs: Path) -> None:
    with contextlib.suppress(OSError):
        for index in range(64):
            (small_tmpfs / f"f{index}").touch()
    report = DiskCheck([str(small_tmpfs)], min_free_fraction=0, min_free_bytes=0).check(0.0)
    assert report.status is HealthStatus.UNHEALTHY and report.reason == "InodesLow"


def test_real_unreaped_children_are_counted_as_zombies() -> None:
    children = [subprocess.Popen([sys.executable, "-c", "pass"]) for _ in range(3)]
    pids = {child.pid for child in children}

    def ours() -> list:  # type: ignore[type-arg]
        # only these children: an earlier test in this worker process may have left a zombie
        return [z for z in zombie_processes() if z.ppid == os.getpid() and z.pid in pids]

    check = ZombieCheck(max_zombies=2, zombies=ours)
    try:
        deadline = time.monotonic() + 60
        while len(ours()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        report = check.check(0.0)
        assert report.status is HealthStatus.UNHEALTHY
        assert report.evidence["count"] == 3
        assert {z["pid"] for z in report.evidence["sample"]} == {p.pid for p in children}
    finally:
        for child in children:
            child.wait(timeout=30)
    assert check.check(0.0).status is HealthStatus.HEALTHY
