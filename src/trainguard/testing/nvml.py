# ruff: noqa: N802  (the names are pynvml's)
"""A stand-in for the ``pynvml`` module, for testing GPU health checks without a GPU.

`FakeNvml` has the names the checks call (``nvmlInit``, ``nvmlDeviceGetTotalEccErrors``...)
and raises its own ``NVMLError`` with pynvml's error codes, so `trainguard.health.nvml` maps
its errors exactly as it maps the real library's. Each `FakeGpu` is a mutable record: a test
raises its ECC counter, takes an NVLink down or heats it up between two probes and watches
the check (and the node label) react. ``None`` in a field means "this device does not support
the query" (``NVML_ERROR_NOT_SUPPORTED``), as on a GPU without NVLink or row remapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

NVML_SUCCESS = 0
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999


class FakeNVMLError(Exception):
    """pynvml's ``NVMLError``: ``value`` is the NVML return code."""

    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


@dataclass
class FakeGpu:
    """One simulated GPU; every field can be changed between probes."""

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    ecc_uncorrected: int | None = 0
    ecc_corrected: int | None = 0
    remapped_rows: tuple[int, int, bool, bool] | None = (0, 0, False, False)
    retired_pages_sbe: list[int] | None = field(default_factory=list)
    retired_pages_dbe: list[int] | None = field(default_factory=list)
    retirement_pending: bool = False
    temperature_c: int = 40
    slowdown_c: int | None = 90
    throttle_reasons: int = 0
    nvlink_up: list[bool] | None = field(default_factory=lambda: [True] * 18)
    nvlink_errors: dict[int, int] = field(default_factory=dict)
    lost: bool = False


class FakeNvml:
    """A module-like object with pynvml's functions over a list of `FakeGpu`.

    Args:
        gpus: the devices; an empty list is a node whose driver lists no GPU.
        driver_loaded: ``False`` makes ``nvmlInit`` fail with ``DRIVER_NOT_LOADED``
            (a CPU node with the bindings installed).
        driver_version: what ``nvmlSystemGetDriverVersion`` answers.
    """

    NVMLError = FakeNVMLError
    NVML_NVLINK_MAX_LINKS = 18

    def __init__(
        self,
        gpus: list[FakeGpu] | None = None,
        *,
        driver_loaded: bool = True,
        driver_version: str = "550.54.15",
    ) -> None:
        self.gpus = list(gpus or [])
        self.driver_loaded = driver_loaded
        self.driver_version = driver_version
        self.init_calls = 0

    # --- library -------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        """Fails with DRIVER_NOT_LOADED unless ``driver_loaded``."""
        self.init_calls += 1
        if not self.driver_loaded:
            raise FakeNVMLError(NVML_ERROR_DRIVER_NOT_LOADED)

    def nvmlShutdown(self) -> None:
        """No-op."""

    def nvmlSystemGetDriverVersion(self) -> str:
        """The configured driver version."""
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        """Number of GPUs."""
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        """The GPU itself serves as its handle."""
        if not 0 <= index < len(self.gpus):
            raise FakeNVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return self._alive(self.gpus[index])

    # --- identity ------------------------------------------------------------------------
    def nvmlDeviceGetName(self, handle: FakeGpu) -> str:
        """Device name."""
        return self._alive(handle).name

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str:
        """Device UUID."""
        return self._alive(handle).uuid

    # --- memory errors -------------------------------------------------------------------
    def nvmlDeviceGetTotalEccErrors(self, handle: FakeGpu, error_type: int, counter: int) -> int:
        """Volatile or aggregate ECC count (both answer the same here)."""
        del counter
        gpu = self._alive(handle)
        value = gpu.ecc_uncorrected if error_type == 1 else gpu.ecc_corrected
        return self._supported(value)

    def nvmlDeviceGetRemappedRows(self, handle: FakeGpu) -> tuple[int, int, bool, bool]:
        """(correctable, uncorrectable, pending, failure)."""
        return self._supported(self._alive(handle).remapped_rows)

    def nvmlDeviceGetRetiredPages(self, handle: FakeGpu, cause: int) -> list[int]:
        """Retired page addresses for ``cause`` (0 = single-bit, 1 = double-bit)."""
        gpu = self._alive(handle)
        return self._supported(gpu.retired_pages_dbe if cause == 1 else gpu.retired_pages_sbe)

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle: FakeGpu) -> int:
        """1 when a retirement waits for the next reset."""
        return int(self._alive(handle).retirement_pending)

    # --- thermal -------------------------------------------------------------------------
    def nvmlDeviceGetTemperature(self, handle: FakeGpu, sensor: int) -> int:
        """GPU core temperature."""
        del sensor
        return self._alive(handle).temperature_c

    def nvmlDeviceGetTemperatureThreshold(self, handle: FakeGpu, threshold: int) -> int:
        """The slowdown threshold."""
        del threshold
        return self._supported(self._alive(handle).slowdown_c)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: FakeGpu) -> int:
        """Bit mask of clock event (throttle) reasons."""
        return self._alive(handle).throttle_reasons

    # --- NVLink --------------------------------------------------------------------------
    def nvmlDeviceGetNvLinkState(self, handle: FakeGpu, link: int) -> int:
        """1 when ``link`` is active."""
        links = self._supported(self._alive(handle).nvlink_up)
        if link >= len(links):
            raise FakeNVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return int(links[link])

    def nvmlDeviceGetNvLinkErrorCounter(self, handle: FakeGpu, link: int, counter: int) -> int:
        """Errors on ``link`` (all counters of a link share one number here, on counter 0)."""
        return self._alive(handle).nvlink_errors.get(link, 0) if counter == 0 else 0

    # --- helpers -------------------------------------------------------------------------
    @staticmethod
    def _alive(handle: FakeGpu) -> FakeGpu:
        if handle.lost:
            raise FakeNVMLError(NVML_ERROR_GPU_IS_LOST)
        return handle

    @staticmethod
    def _supported(value: T | None) -> T:
        if value is None:
            raise FakeNVMLError(NVML_ERROR_NOT_SUPPORTED)
        return value
