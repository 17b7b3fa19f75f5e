"""Disk, memory, zombie and clock-skew checks over injected providers; kernel log sources."""

from __future__ import annotations

import os
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from trainguard.errors import HealthCheckError
from trainguard.health.clockskew import ClockSkewCheck, fixed_offset, http_date_offset
from trainguard.health.kernlog import FileLogSource, parse_kmsg_records
from trainguard.health.report import HealthStatus, NodeAction
from trainguard.health.resources import DiskCheck, MemoryCheck, ZombieCheck
from trainguard.health.system import DiskUsage, MemoryUsage, ZombieProcess

NOW = 1_800_000_000.0
GIB = 1024**3


def disk(free_bytes: int, free_inodes: int = 900) -> DiskUsage:
    return DiskUsage(
        total_bytes=100 * GIB, free_bytes=free_bytes, total_inodes=1000, free_inodes=free_inodes
    )


def test_disk_space_and_inode_thresholds_per_path() -> None:
    usage = {"/ckpt": disk(50 * GIB), "/logs": disk(50 * GIB)}
    check = DiskCheck(
        ["/ckpt", "/logs"], min_free_fraction=0.05, min_free_bytes=GIB, usage=usage.__getitem__
    )
    assert check.check(NOW).status is HealthStatus.HEALTHY
    usage["/ckpt"] = disk(4 * GIB)  # 4% free
    low = check.check(NOW)
    assert low.reason == "DiskSpaceLow" and low.action is NodeAction.REBOOT
    assert low.evidence["paths"]["/ckpt"]["freeFraction"] == 0.04
    usage["/ckpt"] = disk(50 * GIB)
    usage["/logs"] = disk(50 * GIB, free_inodes=10)
    assert check.check(NOW).reason == "InodesLow"


def test_disk_check_rejects_an_empty_path_list() -> None:
    with pytest.raises(ValueError, match="at least one path"):
        DiskCheck([])


def test_real_statvfs_of_a_missing_path_is_a_probe_error() -> None:
    with pytest.raises(HealthCheckError, match="cannot statvfs"):
        DiskCheck(["/no/such/dir/for/trainguard"]).check(NOW)


def test_memory_pressure() -> None:
    reading = MemoryUsage(total_bytes=100, available_bytes=50)
    check = MemoryCheck(min_available_fraction=0.1, memory=lambda: reading)
    assert check.check(NOW).status is HealthStatus.HEALTHY
    reading = MemoryUsage(total_bytes=100, available_bytes=5)
    report = check.check(NOW)
    assert report.reason == "MemoryAvailableLow" and report.evidence["availableBytes"] == 5


def test_zombie_limit() -> None:
    table = [ZombieProcess(pid=100 + i, ppid=1, name="defunct") for i in range(3)]
    check = ZombieCheck(max_zombies=2, zombies=lambda: table)
    report = check.check(NOW)
    assert report.reason == "ZombieProcesses" and report.evidence["count"] == 3
    table.pop()
    assert check.check(NOW).status is HealthStatus.HEALTHY


def test_clock_skew_against_a_fixed_reference() -> None:
    assert ClockSkewCheck(fixed_offset(1.0)).check(NOW).status is HealthStatus.HEALTHY
    report = ClockSkewCheck(fixed_offset(-30.0), max_skew_s=5).check(NOW)
    assert report.reason == "ClockSkewExceeded" and report.evidence["offsetSeconds"] == -30.0


def test_clock_skew_from_an_http_date_header() -> None:
    import time

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Date": formatdate(time.time() + 120, usegmt=True)})

    source = http_date_offset("http://controller/", transport=httpx.MockTransport(handler))
    report = ClockSkewCheck(source, max_skew_s=5).check(NOW)
    assert report.status is HealthStatus.UNHEALTHY
    assert 118 < report.evidence["offsetSeconds"] < 122


def test_clock_skew_reference_without_date_is_a_probe_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    source = http_date_offset("http://controller/", transport=transport)
    with pytest.raises(HealthCheckError, match="no Date header"):
        ClockSkewCheck(source).check(NOW)


def test_file_log_source_follows_appends_partial_lines_rotation_and_truncation(
    tmp_path: Path,
) -> None:
    log = tmp_path / "kern.log"
    log.write_text("old line from an earlier boot\n")
    source = FileLogSource(log)  # starts at the end
    assert source.read_new() == []
    with log.open("a") as fh:
        fh.write("first\nsecond half")
    assert source.read_new() == ["first"]
    with log.open("a") as fh:
        fh.write("-written\n")
    assert source.read_new() == ["second half-written"]
    with log.open("a") as fh:
        fh.write("last before rotation\n")
    os.rename(log, tmp_path / "kern.log.1")
    log.write_text("after rotation\n")
    assert source.read_new() == ["last before rotation", "after rotation"]
    log.write_text("")
    log.write_text("x\n")  # truncated then rewritten: starts over
    assert source.read_new() == ["x"]
    source.close()


def test_file_log_source_missing_file_reads_nothing_until_it_appears(tmp_path: Path) -> None:
    source = FileLogSource(tmp_path / "later.log", from_start=True)
    assert source.read_new() == []
    (tmp_path / "later.log").write_text("hello\n")
    assert source.read_new() == ["hello"]
    source.close()


def test_kmsg_records_keep_the_message_and_drop_continuations() -> None:
    data = (
        b"4,1021,412345678,-;NVRM: Xid (PCI:0000:b9:00): 79, GPU has fallen off the bus.\n"
        b" SUBSYSTEM=pci\n"
        b"6,1022,412345679,-;eth0: link up\n"
    )
    assert parse_kmsg_records(data) == [
        "NVRM: Xid (PCI:0000:b9:00): 79, GPU has fallen off the bus.",
        "eth0: link up",
    ]
