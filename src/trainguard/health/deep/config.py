"""Settings and thresholds of the deep health checks, apart from the checks themselves.

The checks import torch (seconds to load); their settings do not, so the CLI can parse and
validate ``health deep --config`` without paying for torch until a check really runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StressConfig(BaseModel):
    """Settings of ``InstanceStress``."""

    model_config = ConfigDict(extra="forbid")

    duration_s: float = Field(default=10.0, gt=0, description="Seconds of matmul per device.")
    matrix_size: int = Field(default=1024, ge=16, description="n of the n x n matmuls.")
    memory_mb: int = Field(default=256, ge=1, description="Host RAM covered by the pattern test.")
    device_memory_mb: int = Field(
        default=1024, ge=1, description="Memory per GPU covered by the pattern test."
    )
    tolerance: float = Field(
        default=0.05,
        gt=0,
        description="Allowed Freivalds residual, in units of the worst-case float32 rounding "
        "bound n*eps*|A||B||r| (correct products measure ~1e-4 of it).",
    )
    include_cpu: bool = Field(default=True, description="Burn the CPU too when GPUs exist.")
    seed: int = Field(default=0, description="Seed of the random inputs.")


class ConnectivityConfig(BaseModel):
    """Settings and thresholds of ``InstanceConnectivity``."""

    model_config = ConfigDict(extra="forbid")

    sizes_mb: list[float] = Field(default=[1.0, 16.0], min_length=1, description="Message sizes.")
    iterations: int = Field(default=10, ge=1, description="Timed all-reduces per size.")
    warmup: int = Field(default=3, ge=0, description="Untimed all-reduces per size first.")
    latency_iterations: int = Field(default=50, ge=1, description="Tiny all-reduces timed.")
    min_busbw_gbps: float = Field(
        default=0.05, ge=0, description="Minimum bus bandwidth (GB/s) at the largest size."
    )
    max_latency_ms: float = Field(
        default=50.0, gt=0, description="Maximum mean latency of a 4-byte all-reduce."
    )
    backend: Literal["auto", "gloo", "nccl"] = Field(
        default="auto", description="auto: NCCL when GPUs are visible, else gloo."
    )
    host: str = Field(default="127.0.0.1", description="Address the rendezvous store binds.")
    timeout_s: float = Field(default=120.0, gt=0, description="Limit for the whole run.")
