"""GPU memory checks through NVML: ECC error counts and memory repair (row remapping on
Ampere and newer, page retirement before).

Kept apart from `trainguard.health.gpu` (the `GpuCheck` template, count, thermal) because
memory health has its own escalation: an error the GPU corrected is counted, one it could not
correct or a repair waiting for a reset asks for a reboot, and memory it can no longer repair
(no spare rows, too many retired pages) asks for a replacement.
"""

from __future__ import annotations

from typing import Any

from trainguard.health.gpu import NVML_FEATURE_ENABLED, GpuCheck, Problem
from trainguard.health.nvml import GpuDevice, NvmlSession, Unsupported
from trainguard.health.report import NodeAction

# pynvml constants, repeated so a fake module need not define them.
NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS = 0
NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR = 1


class GpuEccCheck(GpuCheck):
    """Volatile (since driver load) ECC error counts: any uncorrectable error needs a reset;
    corrected errors fail only past ``max_corrected`` (``None`` = never)."""

    name = "GpuEcc"

    def __init__(
        self,
        session: NvmlSession,
        *,
        expected_gpus: int | None = None,
        max_uncorrected: int = 0,
        max_corrected: int | None = None,
    ) -> None:
        super().__init__(session, expected_gpus=expected_gpus)
        self.max_uncorrected = max_uncorrected
        self.max_corrected = max_corrected

    def inspect(self, device: GpuDevice) -> tuple[list[Problem], dict[str, Any]]:
        """Read both counters."""
        try:
            unc = self.session.call(
                "nvmlDeviceGetTotalEccErrors",
                device.handle,
                NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                NVML_VOLATILE_ECC,
            )
            corr = self.session.call(
                "nvmlDeviceGetTotalEccErrors",
                device.handle,
                NVML_MEMORY_ERROR_TYPE_CORRECTED,
                NVML_VOLATILE_ECC,
            )
        except Unsupported:
            return [], {"ecc": "unsupported"}
        problems = []
        if unc > self.max_uncorrected:
            problems.append(
                Problem(
                    "GpuEccUncorrectable",
                    NodeAction.REBOOT,
                    f"{unc} uncorrectable ECC error(s) since driver load",
                )
            )
        if self.max_corrected is not None and corr > self.max_corrected:
            problems.append(
                Problem(
                    "GpuEccCorrectedHigh",
                    NodeAction.REBOOT,
                    f"{corr} corrected ECC errors (limit {self.max_corrected})",
                )
            )
        return problems, {"uncorrectedVolatile": unc, "correctedVolatile": corr}


class GpuRetiredPagesCheck(GpuCheck):
    """Memory repair state: row remapping on Ampere and newer, page retirement before.

    A pending remap or retirement takes effect at the next reset (reboot); a remap failure or
    more retired pages than ``max_retired_pages`` means memory the GPU can no longer repair
    (replace).
    """

    name = "GpuRetiredPages"

    def __init__(
        self,
        session: NvmlSession,
        *,
        expected_gpus: int | None = None,
        max_retired_pages: int = 60,
    ) -> None:
        super().__init__(session, expected_gpus=expected_gpus)
        self.max_retired_pages = max_retired_pages

    def inspect(self, device: GpuDevice) -> tuple[list[Problem], dict[str, Any]]:
        """Remapped rows if supported, else retired pages."""
        try:
            corr, unc, pending, failure = self.session.call(
                "nvmlDeviceGetRemappedRows", device.handle
            )
        except Unsupported:
            return self._retired_pages(device)
        evidence = {
            "remappedCorrectable": corr,
            "remappedUncorrectable": unc,
            "remapPending": bool(pending),
            "remapFailure": bool(failure),
        }
        problems = []
        if failure:
            problems.append(
                Problem(
                    "GpuRowRemapFailure",
                    NodeAction.REPLACE,
                    "row remapping failed: no spare rows left",
                )
            )
        elif pending:
            problems.append(
                Problem(
                    "GpuRowRemapPending",
                    NodeAction.REBOOT,
                    f"row remap pending ({unc} uncorrectable, {corr} correctable)",
                )
            )
        return problems, evidence

    def _retired_pages(self, device: GpuDevice) -> tuple[list[Problem], dict[str, Any]]:
        try:
            sbe = self.session.call(
                "nvmlDeviceGetRetiredPages",
                device.handle,
                NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS,
            )
            dbe = self.session.call(
                "nvmlDeviceGetRetiredPages",
                device.handle,
                NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR,
            )
            pending = self.session.call("nvmlDeviceGetRetiredPagesPendingStatus", device.handle)
        except Unsupported:
            return [], {"memoryRepair": "unsupported"}
        retired = len(sbe) + len(dbe)
        evidence = {
            "retiredSingleBit": len(sbe),
            "retiredDoubleBit": len(dbe),
            "retirementPending": pending == NVML_FEATURE_ENABLED,
        }
        problems = []
        if retired > self.max_retired_pages:
            problems.append(
                Problem(
                    "GpuRetiredPagesExceeded",
                    NodeAction.REPLACE,
                    f"{retired} retired pages (limit {self.max_retired_pages})",
                )
            )
        elif pending == NVML_FEATURE_ENABLED:
            problems.append(
                Problem(
                    "GpuPageRetirementPending",
                    NodeAction.REBOOT,
                    "page retirement pending until the next reset",
                )
            )
        return problems, evidence
