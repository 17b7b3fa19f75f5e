"""GPU checks through NVML: their shared template, device count, temperature and throttling
(GPU memory — ECC, retired pages, remapped rows — is `trainguard.health.gpu_memory`, NVLink is
`trainguard.health.nvlink`; both build on `GpuCheck`).

They share one template (`GpuCheck.check`): find out whether GPUs can be queried at all, list
them, inspect each device, and turn the problems found into one report whose action is the
worst problem's. Without NVIDIA bindings or driver a check answers ``NotApplicable`` when the
node is not expected to have GPUs, and otherwise says why it cannot vouch for them — it never
reports success it did not measure. A GPU that NVML reports as lost is always a fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainguard.errors import HealthCheckError
from trainguard.health.nvml import GpuDevice, GpuLost, NvmlSession, NvmlState, Unsupported
from trainguard.health.report import (
    HealthReport,
    NodeAction,
    healthy,
    not_applicable,
    unhealthy,
)
from trainguard.health.xid import FAULT_NVIDIA

# pynvml constants, repeated so a fake module need not define them.
NVML_TEMPERATURE_GPU = 0
NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1
NVML_FEATURE_ENABLED = 1
THROTTLE_HW_SLOWDOWN = 0x8
THROTTLE_SW_THERMAL = 0x20
THROTTLE_HW_THERMAL = 0x40
THROTTLE_HW_POWER_BRAKE = 0x80
THROTTLE_FAULT_BITS = {
    THROTTLE_HW_SLOWDOWN: "HwSlowdown",
    THROTTLE_HW_THERMAL: "HwThermalSlowdown",
    THROTTLE_HW_POWER_BRAKE: "HwPowerBrakeSlowdown",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one GPU."""

    reason: str
    action: NodeAction
    text: str


class GpuCheck:
    """Template for NVML checks; subclasses implement `inspect`.

    Args:
        session: the shared NVML session (one per process is enough).
        expected_gpus: GPUs this node should have; ``None`` = unknown, ``0`` = a CPU node.
    """

    name = "Gpu"

    def __init__(self, session: NvmlSession, *, expected_gpus: int | None = None) -> None:
        self.session = session
        self.expected_gpus = expected_gpus

    def check(self, now: float) -> HealthReport:
        """Query every GPU and judge it."""
        state = self.session.state()
        if state is not NvmlState.READY:
            return self.without_nvml(now, state)
        try:
            devices = self.session.devices()
        except GpuLost as exc:
            return self._report(now, [Problem("GpuLost", NodeAction.REBOOT, str(exc))], {})
        problems: list[Problem] = []
        evidence: dict[str, Any] = {}
        for device in devices:
            key = f"gpu{device.index}"
            try:
                found, evidence[key] = self.inspect(device)
            except GpuLost as exc:
                found, evidence[key] = [Problem("GpuLost", NodeAction.REBOOT, str(exc))], {}
            problems.extend(Problem(p.reason, p.action, f"{key}: {p.text}") for p in found)
        if not devices:
            return self.no_devices(now)
        return self._report(now, problems, evidence)

    def inspect(self, device: GpuDevice) -> tuple[list[Problem], dict[str, Any]]:
        """Problems and evidence for one device."""
        raise NotImplementedError

    def no_devices(self, now: float) -> HealthReport:
        """NVML works but lists no GPU: nothing to judge (the count check judges the count)."""
        return not_applicable(self.name, now, "NVML lists no GPU")

    def without_nvml(self, now: float, state: NvmlState) -> HealthReport:
        """What to answer when GPUs cannot be queried."""
        if not self.expected_gpus:
            return not_applicable(self.name, now, self.session.detail, nvml=state.value)
        raise HealthCheckError(
            f"{self.expected_gpus} GPU(s) expected but NVML is unavailable: {self.session.detail}"
        )

    def _report(
        self, now: float, problems: list[Problem], evidence: dict[str, Any]
    ) -> HealthReport:
        if not problems:
            return healthy(self.name, now, f"{len(evidence)} GPU(s) fine", devices=evidence)
        worst = max(problems, key=lambda p: p.action)
        return unhealthy(
            self.name,
            now,
            reason=worst.reason,
            message="; ".join(p.text for p in problems),
            fault_type=FAULT_NVIDIA[worst.action],
            action=worst.action,
            devices=evidence,
            problems=[
                {"reason": p.reason, "action": p.action.name, "text": p.text} for p in problems
            ],
        )


class GpuCountCheck(GpuCheck):
    """The number of GPUs NVML sees against ``expected_gpus`` (a GPU missing after a fault is
    HyperPod's "GPU count mismatch => reboot")."""

    name = "GpuCount"

    def check(self, now: float) -> HealthReport:
        """Count devices and compare."""
        state = self.session.state()
        if state is NvmlState.NO_DRIVER and self.expected_gpus:
            return self._report(
                now,
                [
                    Problem(
                        "GpuCountMismatch",
                        NodeAction.REBOOT,
                        f"{self.expected_gpus} GPU(s) expected, no NVIDIA driver: "
                        f"{self.session.detail}",
                    )
                ],
                {},
            )
        return super().check(now)

    def inspect(self, device: GpuDevice) -> tuple[list[Problem], dict[str, Any]]:
        """Nothing per device beyond its identity."""
        return [], {"name": device.name, "uuid": device.uuid}

    def no_devices(self, now: float) -> HealthReport:
        """Zero GPUs is a fault only when some were expected."""
        if self.expected_gpus:
            return self._report(
                now,
                [
                    Problem(
                        "GpuCountMismatch",
                        NodeAction.REBOOT,
                        f"NVML lists 0 GPU(s), {self.expected_gpus} expected",
                    )
                ],
                {},
            )
        return not_applicable(self.name, now, "NVML lists no GPU and none is expected")

    def _report(
        self, now: float, problems: list[Problem], evidence: dict[str, Any]
    ) -> HealthReport:
        count = len(evidence)
        if not problems and self.expected_gpus is not None and count != self.expected_gpus:
            problems = [
                Problem(
                    "GpuCountMismatch",
                    NodeAction.REBOOT,
                    f"NVML lists {count} GPU(s), {self.expected_gpus} expected",
                )
            ]
        report = super()._report(now, problems, evidence)
        report.evidence.update(count=count, expected=self.expected_gpus)
        return report


class GpuThermalCheck(GpuCheck):
    """Temperature against the GPU's own slowdown threshold (or ``max_temperature_c``) and
    hardware clock throttling (HW slowdown, HW thermal, power brake): a hot or braked GPU makes
    the whole synchronous job wait for it. Default action: cordon (a person fixes cooling)."""

    name = "GpuThermal"

    def __init__(
        self,
        session: NvmlSession,
        *,
        expected_gpus: int | None = None,
        max_temperature_c: int | None = None,
        action: NodeAction = NodeAction.CORDON,
    ) -> None:
        super().__init__(session, expected_gpus=expected_gpus)
        self.max_temperature_c = max_temperature_c
        self.action = action

    def inspect(self, device: GpuDevice) -> tuple[list[Problem], dict[str, Any]]:
        """Read temperature, threshold and throttle reasons."""
        temp = self.session.call("nvmlDeviceGetTemperature", device.handle, NVML_TEMPERATURE_GPU)
        limit = self.max_temperature_c or self._slowdown_threshold(device)
        reasons = self._throttle_reasons(device)
        active = [name for bit, name in THROTTLE_FAULT_BITS.items() if reasons & bit]
        evidence = {
            "temperatureC": temp,
            "limitC": limit,
            "throttleReasons": hex(reasons),
            "hardwareThrottle": active,
        }
        problems = []
        if limit is not None and temp >= limit:
            problems.append(
                Problem(
                    "GpuOverTemperature", self.action, f"{temp} C at or above the {limit} C limit"
                )
            )
        if active:
            problems.append(
                Problem(
                    "GpuHardwareThrottle", self.action, f"clocks held down by {', '.join(active)}"
                )
            )
        return problems, evidence

    def _slowdown_threshold(self, device: GpuDevice) -> int | None:
        try:
            value = self.session.call(
                "nvmlDeviceGetTemperatureThreshold",
                device.handle,
                NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,
            )
        except Unsupported:
            return None
        return int(value)

    def _throttle_reasons(self, device: GpuDevice) -> int:
        for function in (
            "nvmlDeviceGetCurrentClocksEventReasons",
            "nvmlDeviceGetCurrentClocksThrottleReasons",
        ):
            try:
                return int(self.session.call(function, device.handle))
            except Unsupported:
                continue
        return 0
