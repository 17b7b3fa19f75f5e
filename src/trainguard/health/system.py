"""Readings of the machine, behind small injectable providers.

Checks never call ``os.statvfs`` or ``psutil`` directly: they take a provider, so a test can
hand them a full file system or a process table with zombies without needing root — and so the
same check can be pointed at a simulated node's directory. The defaults read the real machine.
Every provider maps the library's own exceptions to `trainguard.errors.HealthCheckError`
(the probe could not run), which checks turn into an ``Error`` report.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from trainguard.errors import HealthCheckError

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class DiskUsage:
    """Space and inode counts of the file system holding a path (as ``statvfs`` gives them,
    in bytes and inodes available to an unprivileged writer)."""

    total_bytes: int
    free_bytes: int
    total_inodes: int
    free_inodes: int

    @property
    def free_fraction(self) -> float:
        """Free share of the space (1.0 for a file system that reports no size)."""
        return self.free_bytes / self.total_bytes if self.total_bytes else 1.0

    @property
    def free_inode_fraction(self) -> float:
        """Free share of inodes (1.0 where the file system has no inode limit, e.g. btrfs)."""
        return self.free_inodes / self.total_inodes if self.total_inodes else 1.0


@dataclass(frozen=True)
class MemoryUsage:
    """System memory, in bytes; ``available`` is what can be allocated without swapping."""

    total_bytes: int
    available_bytes: int

    @property
    def available_fraction(self) -> float:
        """Available share of total memory."""
        return self.available_bytes / self.total_bytes if self.total_bytes else 1.0


@dataclass(frozen=True)
class ZombieProcess:
    """A process that exited and whose parent has not reaped it."""

    pid: int
    ppid: int
    name: str


DiskProvider = Callable[[str], DiskUsage]
MemoryProvider = Callable[[], MemoryUsage]
ZombieProvider = Callable[[], list[ZombieProcess]]
BootIdProvider = Callable[[], str]


def statvfs_usage(path: str) -> DiskUsage:
    """`DiskUsage` of the file system holding ``path``, from ``os.statvfs``."""
    try:
        st = os.statvfs(path)
    except OSError as exc:
        raise HealthCheckError(f"cannot statvfs {path}: {exc.strerror or exc}") from exc
    return DiskUsage(
        total_bytes=st.f_blocks * st.f_frsize,
        free_bytes=st.f_bavail * st.f_frsize,
        total_inodes=st.f_files,
        free_inodes=st.f_favail,
    )


def system_memory() -> MemoryUsage:
    """`MemoryUsage` from ``psutil.virtual_memory``."""
    try:
        vm = psutil.virtual_memory()
    except (OSError, psutil.Error) as exc:
        raise HealthCheckError(f"cannot read memory usage: {exc}") from exc
    return MemoryUsage(total_bytes=int(vm.total), available_bytes=int(vm.available))


def zombie_processes() -> list[ZombieProcess]:
    """Every process in state ``Z`` (defunct), from the process table."""
    zombies = []
    try:
        for proc in psutil.process_iter(["pid", "ppid", "name", "status"]):
            info = proc.info
            if info.get("status") == psutil.STATUS_ZOMBIE:
                ppid = info.get("ppid") or 0
                zombies.append(ZombieProcess(info["pid"], ppid, info["name"] or ""))
    except (OSError, psutil.Error) as exc:
        raise HealthCheckError(f"cannot read the process table: {exc}") from exc
    return zombies


def file_boot_id(path: Path = BOOT_ID_PATH, *, create: bool = False) -> BootIdProvider:
    """A provider reading the boot id from ``path`` (the kernel's by default).

    With ``create`` a missing file is written with a fresh id: a simulated node keeps its boot
    id in its node-local memory directory, which its simulated reboot wipes — so, as on a real
    machine, every boot gets a new id.
    """

    def read() -> str:
        try:
            if create and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{uuid.uuid4()}\n", encoding="utf-8")
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise HealthCheckError(f"cannot read boot id from {path}: {exc}") from exc

    return read
