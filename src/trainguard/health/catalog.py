"""The standard checks by name, built from one settings object.

``trainguard health check --checks DiskSpace,KernelLog`` and ``trainguard health-agent`` both
build their checks here, so a name means the same check with the same thresholds wherever it
is used. Checks that need something this machine may not have are handled explicitly: GPU checks
answer ``NotApplicable`` without NVML; ``ClockSkew`` needs a reference URL and is left out of
the default set without one (asking for it by name without a URL is a usage error).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from trainguard.errors import UsageError
from trainguard.health.agent import ScheduledCheck
from trainguard.health.clockskew import ClockSkewCheck, http_date_offset
from trainguard.health.gpu import GpuCountCheck, GpuThermalCheck
from trainguard.health.gpu_memory import GpuEccCheck, GpuRetiredPagesCheck
from trainguard.health.kernel_check import KernelLogCheck
from trainguard.health.kernlog import KMSG_PATH, FileLogSource, KmsgSource, LogSource
from trainguard.health.nvlink import NvLinkCheck
from trainguard.health.nvml import NvmlSession
from trainguard.health.report import HealthCheck
from trainguard.health.resources import DiskCheck, MemoryCheck, ZombieCheck
from trainguard.health.system import BOOT_ID_PATH, BootIdProvider, file_boot_id


@dataclass(frozen=True)
class CheckSettings:
    """What the standard checks look at, and how often.

    Attributes:
        disk_paths: checkpoint and log directories whose file systems must have room.
        kernel_log: a kernel log file to follow; ``None`` reads ``/dev/kmsg``.
        kernel_log_from_start: read the file from its start (one-shot checks, simulated nodes)
            rather than from its end (a long-lived system log).
        controller_url: an HTTP endpoint whose ``Date`` header is the reference clock.
        expected_gpus: GPUs this node should have (``None`` = unknown, ``0`` = a CPU node).
        max_clock_skew_s: allowed clock difference to the controller.
        boot_id_path: where the boot id is read (a simulated node's file locally).
        simulated_boot: create the boot-id file when missing (simulated nodes).
        interval_s: seconds between probes of the resource and GPU checks.
        kernel_interval_s: seconds between reads of the kernel log.
    """

    disk_paths: tuple[str, ...] = ("/tmp",)
    kernel_log: str | None = None
    kernel_log_from_start: bool = False
    controller_url: str | None = None
    expected_gpus: int | None = None
    max_clock_skew_s: float = 5.0
    boot_id_path: str = str(BOOT_ID_PATH)
    simulated_boot: bool = False
    interval_s: float = 30.0
    kernel_interval_s: float = 5.0

    def boot_id(self) -> BootIdProvider:
        """The boot id provider these settings describe."""
        return file_boot_id(Path(self.boot_id_path), create=self.simulated_boot)


_Builder = Callable[[CheckSettings, NvmlSession], HealthCheck]


def _kernel_source(settings: CheckSettings) -> LogSource:
    if settings.kernel_log is None:
        if not os.access(KMSG_PATH, os.R_OK):
            raise UsageError(f"cannot read {KMSG_PATH}; pass --kernel-log FILE instead")
        return KmsgSource()
    return FileLogSource(settings.kernel_log, from_start=settings.kernel_log_from_start)


def _clock_skew(settings: CheckSettings, _: NvmlSession) -> HealthCheck:
    if not settings.controller_url:
        raise UsageError("ClockSkew needs the controller's URL (--controller-url)")
    source = http_date_offset(settings.controller_url)
    return ClockSkewCheck(source, max_skew_s=settings.max_clock_skew_s)


BUILDERS: dict[str, _Builder] = {
    "DiskSpace": lambda s, _: DiskCheck(list(s.disk_paths)),
    "MemoryPressure": lambda s, _: MemoryCheck(),
    "Zombies": lambda s, _: ZombieCheck(),
    "ClockSkew": _clock_skew,
    "KernelLog": lambda s, _: KernelLogCheck(_kernel_source(s), boot_id=s.boot_id()),
    "GpuCount": lambda s, n: GpuCountCheck(n, expected_gpus=s.expected_gpus),
    "GpuEcc": lambda s, n: GpuEccCheck(n, expected_gpus=s.expected_gpus),
    "GpuRetiredPages": lambda s, n: GpuRetiredPagesCheck(n, expected_gpus=s.expected_gpus),
    "GpuThermal": lambda s, n: GpuThermalCheck(n, expected_gpus=s.expected_gpus),
    "NvLink": lambda s, n: NvLinkCheck(n, expected_gpus=s.expected_gpus),
}
CHECK_NAMES = tuple(BUILDERS)


def default_names(settings: CheckSettings) -> list[str]:
    """Every standard check this machine can run (``ClockSkew`` only with a URL)."""
    return [n for n in CHECK_NAMES if n != "ClockSkew" or settings.controller_url]


def build_checks(
    settings: CheckSettings,
    *,
    names: Sequence[str] | None = None,
    nvml: NvmlSession | None = None,
) -> list[ScheduledCheck]:
    """The named checks (default: `default_names`), scheduled per ``settings``.

    Raises:
        UsageError: an unknown check name, or a check whose input is missing.
    """
    wanted = list(names) if names else default_names(settings)
    unknown = [n for n in wanted if n not in BUILDERS]
    if unknown:
        raise UsageError(f"unknown check(s) {unknown}; choose from {', '.join(CHECK_NAMES)}")
    session = nvml or NvmlSession()
    scheduled = []
    for name in wanted:
        interval = settings.kernel_interval_s if name == "KernelLog" else settings.interval_s
        scheduled.append(ScheduledCheck(BUILDERS[name](settings, session), interval))
    return scheduled
