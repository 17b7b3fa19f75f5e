"""NVML access for the GPU checks: lazy import, one initialisation, errors mapped once.

``pynvml`` (package ``nvidia-ml-py``, the ``gpu`` extra) is imported only when a GPU check
runs, so CPU-only installs never need it, and any object with pynvml's names can stand in for
it — tests pass `trainguard.testing.FakeNvml`. `NvmlSession.state` separates the three
situations the checks must tell apart: NVML works; NVML is absent by design (no bindings, or no
driver on a CPU node); NVML failed in a way that says nothing about the GPUs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trainguard.errors import HealthCheckError

# pynvml error codes that mean "no NVIDIA driver / library here" rather than "NVML broke".
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_INVALID_ARGUMENT = 2
_ABSENT_CODES = frozenset({NVML_ERROR_DRIVER_NOT_LOADED, NVML_ERROR_LIBRARY_NOT_FOUND})


class NvmlState(StrEnum):
    """Whether GPUs can be queried."""

    READY = "ready"
    NO_BINDINGS = "no-bindings"
    NO_DRIVER = "no-driver"


class Unsupported(Exception):
    """The device does not support this query (consumer GPU, no NVLink...). Internal signal,
    never leaves `trainguard.health`; checks record it as evidence."""


class GpuLost(Exception):
    """NVML says the GPU is lost (``NVML_ERROR_GPU_IS_LOST``): a fault, not a probe error."""


@dataclass(frozen=True)
class GpuDevice:
    """One GPU as NVML lists it."""

    index: int
    handle: Any
    name: str
    uuid: str


def import_pynvml() -> Any | None:
    """``pynvml`` if installed, else ``None``."""
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        return None


class NvmlSession:
    """Initialises NVML on first use and wraps its calls.

    Args:
        module: a pynvml-compatible module; by default ``pynvml`` is imported lazily.
    """

    def __init__(
        self, module: Any | None = None, *, loader: Callable[[], Any | None] = import_pynvml
    ) -> None:
        self._module = module
        self._loader = loader
        self._state: NvmlState | None = None
        self.detail = ""

    @property
    def nvml(self) -> Any:
        """The module (only valid when `state` is ``READY``)."""
        return self._module

    def state(self) -> NvmlState:
        """Initialise if needed and say whether GPUs can be queried.

        Raises:
            HealthCheckError: NVML is there but failed to initialise for another reason.
        """
        if self._state is None:
            self._state = self._initialise()
        return self._state

    def devices(self) -> list[GpuDevice]:
        """Every GPU NVML lists, with name and UUID."""
        count = self.call("nvmlDeviceGetCount")
        found = []
        for index in range(count):
            handle = self.call("nvmlDeviceGetHandleByIndex", index)
            name = _text(self.call("nvmlDeviceGetName", handle))
            uuid = _text(self.call("nvmlDeviceGetUUID", handle))
            found.append(GpuDevice(index, handle, name, uuid))
        return found

    def driver_version(self) -> str:
        """The NVIDIA driver version string."""
        return _text(self.call("nvmlSystemGetDriverVersion"))

    def call(self, function: str, *args: Any) -> Any:
        """Call ``pynvml.<function>(*args)``.

        Raises:
            Unsupported: the device does not support the query.
            GpuLost: the GPU is lost.
            HealthCheckError: any other NVML failure.
        """
        nvml = self._module
        if nvml is None:
            raise HealthCheckError(f"NVML {function} called before NVML was initialised")
        fn = getattr(nvml, function, None)
        if fn is None:
            raise Unsupported(f"{function} is not in this pynvml")
        try:
            return fn(*args)
        except nvml.NVMLError as exc:
            code = getattr(exc, "value", None)
            if code in (NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_INVALID_ARGUMENT):
                raise Unsupported(f"{function}: {exc}") from exc
            if code == NVML_ERROR_GPU_IS_LOST:
                raise GpuLost(f"{function}: {exc}") from exc
            raise HealthCheckError(f"NVML {function} failed: {exc}") from exc

    def _initialise(self) -> NvmlState:
        if self._module is None:
            self._module = self._loader()
        if self._module is None:
            self.detail = "nvidia-ml-py is not installed (pip install 'trainguard[gpu]')"
            return NvmlState.NO_BINDINGS
        try:
            self._module.nvmlInit()
        except self._module.NVMLError as exc:
            if getattr(exc, "value", None) in _ABSENT_CODES:
                self.detail = f"no NVIDIA driver: {exc}"
                return NvmlState.NO_DRIVER
            raise HealthCheckError(f"NVML failed to initialise: {exc}") from exc
        self.detail = "NVML initialised"
        return NvmlState.READY


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
