"""NVML checks against a fake pynvml module: every fault the checks claim to see, and the
refusal to report success without a GPU."""

from __future__ import annotations

import pytest

from trainguard.errors import HealthCheckError
from trainguard.health.gpu import GpuCountCheck, GpuThermalCheck
from trainguard.health.gpu_memory import GpuEccCheck, GpuRetiredPagesCheck
from trainguard.health.nvlink import NvLinkCheck
from trainguard.health.nvml import NvmlSession
from trainguard.health.report import HealthStatus, NodeAction
from trainguard.testing import FakeGpu, FakeNvml

NOW = 1_800_000_000.0


def session(*gpus: FakeGpu, **kwargs: bool) -> NvmlSession:
    return NvmlSession(FakeNvml(list(gpus), **kwargs))  # type: ignore[arg-type]


def two_gpus() -> list[FakeGpu]:
    return [FakeGpu(uuid="GPU-a"), FakeGpu(uuid="GPU-b")]


def test_without_bindings_every_gpu_check_is_not_applicable_on_a_cpu_node() -> None:
    nvml = NvmlSession(loader=lambda: None)
    for cls in (GpuCountCheck, GpuEccCheck, GpuRetiredPagesCheck, GpuThermalCheck, NvLinkCheck):
        report = cls(nvml, expected_gpus=0).check(NOW)
        assert report.status is HealthStatus.NOT_APPLICABLE, cls
        assert "nvidia-ml-py is not installed" in report.message


def test_without_driver_but_gpus_expected_is_never_success() -> None:
    nvml = session(driver_loaded=False)
    count = GpuCountCheck(nvml, expected_gpus=8).check(NOW)
    assert count.status is HealthStatus.UNHEALTHY
    assert count.reason == "GpuCountMismatch" and count.action is NodeAction.REBOOT
    with pytest.raises(HealthCheckError, match="8 GPU"):
        GpuEccCheck(nvml, expected_gpus=8).check(NOW)


def test_device_count_against_expected() -> None:
    gpus = two_gpus()
    fake = FakeNvml(gpus)
    check = GpuCountCheck(NvmlSession(fake), expected_gpus=2)  # type: ignore[arg-type]
    assert check.check(NOW).status is HealthStatus.HEALTHY
    fake.gpus.pop()
    report = check.check(NOW)
    assert report.reason == "GpuCountMismatch"
    assert report.evidence["count"] == 1 and report.evidence["expected"] == 2


def test_uncorrectable_ecc_needs_reboot_and_corrected_only_past_limit() -> None:
    gpus = two_gpus()
    check = GpuEccCheck(session(*gpus), max_corrected=1000)
    assert check.check(NOW).status is HealthStatus.HEALTHY
    gpus[1].ecc_corrected = 1001
    assert check.check(NOW).reason == "GpuEccCorrectedHigh"
    gpus[1].ecc_corrected = 0
    gpus[0].ecc_uncorrected = 2
    report = check.check(NOW)
    assert report.reason == "GpuEccUncorrectable" and report.action is NodeAction.REBOOT
    assert report.evidence["devices"]["gpu0"]["uncorrectedVolatile"] == 2
    assert "gpu0:" in report.message


def test_row_remapping_pending_reboots_and_failure_replaces() -> None:
    gpu = FakeGpu()
    check = GpuRetiredPagesCheck(session(gpu))
    gpu.remapped_rows = (0, 1, True, False)
    assert check.check(NOW).action is NodeAction.REBOOT
    gpu.remapped_rows = (3, 9, False, True)
    report = check.check(NOW)
    assert report.reason == "GpuRowRemapFailure" and report.action is NodeAction.REPLACE


def test_retired_pages_on_gpus_without_row_remapping() -> None:
    gpu = FakeGpu(remapped_rows=None)
    check = GpuRetiredPagesCheck(session(gpu), max_retired_pages=3)
    gpu.retirement_pending = True
    assert check.check(NOW).reason == "GpuPageRetirementPending"
    gpu.retired_pages_dbe = [1, 2, 3, 4]
    report = check.check(NOW)
    assert report.reason == "GpuRetiredPagesExceeded" and report.action is NodeAction.REPLACE


def test_temperature_and_hardware_throttle_cordon_the_node() -> None:
    gpu = FakeGpu()
    check = GpuThermalCheck(session(gpu))
    assert check.check(NOW).status is HealthStatus.HEALTHY
    gpu.temperature_c = 91
    hot = check.check(NOW)
    assert hot.reason == "GpuOverTemperature" and hot.action is NodeAction.CORDON
    gpu.temperature_c = 60
    gpu.throttle_reasons = 0x40 | 0x1  # HW thermal + GPU idle (idle alone is harmless)
    braked = check.check(NOW)
    assert braked.reason == "GpuHardwareThrottle"
    assert braked.evidence["devices"]["gpu0"]["hardwareThrottle"] == ["HwThermalSlowdown"]
    gpu.throttle_reasons = 0x1
    assert check.check(NOW).status is HealthStatus.HEALTHY


def test_nvlink_down_and_error_bursts() -> None:
    gpu = FakeGpu(nvlink_up=[True] * 4)
    check = NvLinkCheck(session(gpu), max_error_delta=100)
    assert check.check(NOW).status is HealthStatus.HEALTHY
    gpu.nvlink_errors = {2: 150}
    burst = check.check(NOW)
    assert burst.reason == "NvLinkErrors"
    assert check.check(NOW).status is HealthStatus.HEALTHY  # no new errors since last probe
    gpu.nvlink_up[1] = False
    down = check.check(NOW)
    assert down.reason == "NvLinkDown" and down.action is NodeAction.REBOOT


def test_gpu_without_nvlink_reports_healthy_with_evidence_of_why() -> None:
    check = NvLinkCheck(session(FakeGpu(nvlink_up=None)))
    report = check.check(NOW)
    assert report.status is HealthStatus.HEALTHY
    assert report.evidence["devices"]["gpu0"] == {"nvlink": "unsupported"}


def test_lost_gpu_is_a_fault_for_every_check() -> None:
    gpus = two_gpus()
    gpus[1].lost = True
    for cls in (GpuEccCheck, GpuThermalCheck, GpuRetiredPagesCheck):
        report = cls(session(*gpus)).check(NOW)
        assert report.reason == "GpuLost" and report.action is NodeAction.REBOOT, cls
