"""Resource-pressure checks: disk space and inodes, memory, zombie processes.

These are the conditions Kubernetes' kubelet calls DiskPressure / MemoryPressure / PIDPressure,
judged for a training node: a checkpoint or log path that is (nearly) full stops training as
surely as a dead GPU, and it does so silently until the next save. Thresholds are kept small and
explicit; the default action is a reboot request, because on a training node the usual cause of
each (a full tmpfs or ``/dev/shm``, leaked memory, a reaper-less container init) is cleared by
one, and `NodeAction.REBOOT` is what makes the controller move the job away now.
"""

from __future__ import annotations

from collections.abc import Sequence

from trainguard.health.report import (
    HealthReport,
    NodeAction,
    healthy,
    unhealthy,
)
from trainguard.health.system import (
    DiskProvider,
    MemoryProvider,
    ZombieProvider,
    statvfs_usage,
    system_memory,
    zombie_processes,
)

FAULT_DISK = "DiskPressure"
FAULT_MEMORY = "MemoryPressure"
FAULT_PID = "PIDPressure"
GIB = 1024**3


class DiskCheck:
    """Free space and free inodes on each of ``paths`` (checkpoint and log directories).

    A path fails when its free share drops below ``min_free_fraction`` *or* its free bytes
    below ``min_free_bytes`` (either 0 disables that test), or its free inode share below
    ``min_free_inode_fraction``.
    """

    name = "DiskSpace"

    def __init__(
        self,
        paths: Sequence[str],
        *,
        min_free_fraction: float = 0.05,
        min_free_bytes: int = 1 * GIB,
        min_free_inode_fraction: float = 0.05,
        action: NodeAction = NodeAction.REBOOT,
        usage: DiskProvider = statvfs_usage,
    ) -> None:
        if not paths:
            raise ValueError("DiskCheck needs at least one path")
        self.paths = list(paths)
        self.min_free_fraction = min_free_fraction
        self.min_free_bytes = min_free_bytes
        self.min_free_inode_fraction = min_free_inode_fraction
        self.action = action
        self._usage = usage

    def check(self, now: float) -> HealthReport:
        """Unhealthy if any path is short of space or inodes."""
        evidence: dict[str, dict[str, float | int]] = {}
        problems: list[tuple[str, str]] = []
        for path in self.paths:
            usage = self._usage(path)
            evidence[path] = {
                "freeBytes": usage.free_bytes,
                "totalBytes": usage.total_bytes,
                "freeFraction": round(usage.free_fraction, 4),
                "freeInodes": usage.free_inodes,
                "totalInodes": usage.total_inodes,
                "freeInodeFraction": round(usage.free_inode_fraction, 4),
            }
            space_low = (
                self.min_free_fraction > 0 and usage.free_fraction < self.min_free_fraction
            ) or (
                self.min_free_bytes > 0
                and usage.total_bytes > 0
                and usage.free_bytes < self.min_free_bytes
            )
            if space_low:
                problems.append(
                    (
                        "DiskSpaceLow",
                        f"{path}: {usage.free_bytes} bytes free "
                        f"({usage.free_fraction:.1%} of {usage.total_bytes})",
                    )
                )
            if (
                self.min_free_inode_fraction > 0
                and usage.free_inode_fraction < self.min_free_inode_fraction
            ):
                problems.append(
                    (
                        "InodesLow",
                        f"{path}: {usage.free_inodes} inodes free "
                        f"({usage.free_inode_fraction:.1%} of {usage.total_inodes})",
                    )
                )
        if not problems:
            return healthy(self.name, now, f"{len(self.paths)} path(s) have space", paths=evidence)
        return unhealthy(
            self.name,
            now,
            reason=problems[0][0],
            message="; ".join(text for _, text in problems),
            fault_type=FAULT_DISK,
            action=self.action,
            paths=evidence,
        )


class MemoryCheck:
    """Available memory (what can be allocated without swapping) against a floor."""

    name = "MemoryPressure"

    def __init__(
        self,
        *,
        min_available_fraction: float = 0.05,
        action: NodeAction = NodeAction.REBOOT,
        memory: MemoryProvider = system_memory,
    ) -> None:
        self.min_available_fraction = min_available_fraction
        self.action = action
        self._memory = memory

    def check(self, now: float) -> HealthReport:
        """Unhealthy when the available share is below ``min_available_fraction``."""
        mem = self._memory()
        evidence = {
            "availableBytes": mem.available_bytes,
            "totalBytes": mem.total_bytes,
            "availableFraction": round(mem.available_fraction, 4),
        }
        text = f"{mem.available_bytes} of {mem.total_bytes} bytes available"
        if mem.available_fraction >= self.min_available_fraction:
            return healthy(self.name, now, text, **evidence)
        return unhealthy(
            self.name,
            now,
            reason="MemoryAvailableLow",
            message=f"{text} ({mem.available_fraction:.1%} < {self.min_available_fraction:.1%})",
            fault_type=FAULT_MEMORY,
            action=self.action,
            **evidence,
        )


class ZombieCheck:
    """Defunct processes piling up: each holds a PID, and their number growing means a parent
    (often a container's init) does not reap — a node that will run out of PIDs."""

    name = "Zombies"

    def __init__(
        self,
        *,
        max_zombies: int = 50,
        action: NodeAction = NodeAction.REBOOT,
        zombies: ZombieProvider = zombie_processes,
    ) -> None:
        self.max_zombies = max_zombies
        self.action = action
        self._zombies = zombies

    def check(self, now: float) -> HealthReport:
        """Unhealthy when more than ``max_zombies`` processes are defunct."""
        found = self._zombies()
        sample = [{"pid": z.pid, "ppid": z.ppid, "name": z.name} for z in found[:10]]
        text = f"{len(found)} zombie process(es), limit {self.max_zombies}"
        if len(found) <= self.max_zombies:
            return healthy(self.name, now, text, count=len(found), sample=sample)
        return unhealthy(
            self.name,
            now,
            reason="ZombieProcesses",
            message=text,
            fault_type=FAULT_PID,
            action=self.action,
            count=len(found),
            sample=sample,
        )
