"""Run the NVML checks, the CUDA ``InstanceStress`` and a one-node NCCL ``InstanceConnectivity``
on this machine's GPUs once, and print every report as JSON (the record in docs/health.md).

Usage, from the repository root on a GPU machine::

    PYTHONPATH=src python3 examples/health/gpu_record.py > gpu-record.json

Needs torch with CUDA, ``nvidia-ml-py`` and trainguard's light dependencies (pydantic, psutil,
httpx, pyyaml); it does not need trainguard to be installed.
"""

from __future__ import annotations

import json
import platform
import sys
import time

import torch

from trainguard.health.agent import probe
from trainguard.health.deep.config import ConnectivityConfig, StressConfig
from trainguard.health.deep.connectivity import InstanceConnectivity
from trainguard.health.deep.stress import InstanceStress
from trainguard.health.gpu import (
    GpuCountCheck,
    GpuEccCheck,
    GpuRetiredPagesCheck,
    GpuThermalCheck,
)
from trainguard.health.nvlink import NvLinkCheck
from trainguard.health.nvml import NvmlSession, NvmlState


def main() -> int:
    """Run everything once; exit 1 if any report is not Healthy/NotApplicable."""
    gpus = torch.cuda.device_count()
    session = NvmlSession()
    ready = session.state() is NvmlState.READY
    header = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cudaDevices": [torch.cuda.get_device_name(i) for i in range(gpus)],
        "driver": session.driver_version() if ready else session.detail,
    }
    checks = [
        cls(session, expected_gpus=gpus)
        for cls in (GpuCountCheck, GpuEccCheck, GpuRetiredPagesCheck, GpuThermalCheck, NvLinkCheck)
    ]
    stress = StressConfig(
        duration_s=10, matrix_size=4096, memory_mb=1024, device_memory_mb=16384, include_cpu=True
    )
    checks.append(InstanceStress(stress))  # type: ignore[arg-type]
    connectivity = ConnectivityConfig(sizes_mb=[1, 64, 512], iterations=20, warmup=5)
    checks.append(InstanceConnectivity(["this-node"], connectivity))  # type: ignore[arg-type]
    reports = []
    for check in checks:
        start = time.perf_counter()
        report = probe(check, time.time())
        print(
            f"{check.name}: {report.status.value} ({time.perf_counter() - start:.1f}s) "
            f"{report.message}",
            file=sys.stderr,
        )
        reports.append(report.to_json())
    print(json.dumps({"machine": header, "reports": reports}, indent=2))
    return 0 if all(r["status"] in ("Healthy", "NotApplicable") for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
