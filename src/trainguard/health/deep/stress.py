"""``InstanceStress``: a timed compute burn on every device, checked for silent data corruption,
plus a memory pattern test.

A GPU (or CPU) that computes wrong numbers without raising is the worst kind of sick node: the
job keeps running and learns garbage. So every product of the burn is checked against a
reference *computed differently*: Freivalds' check compares ``C @ r`` with ``A @ (B @ r)`` for a
random vector ``r``, in float64 — a different algorithm (two matrix-vector products instead of a
matrix product), a different precision and, on a GPU, different kernels than the burn itself. It
costs O(n²) against the burn's O(n³), and a corrupted element of ``C`` changes ``C @ r`` by that
element's error times a random weight, so any corruption above the float32 rounding bound is
caught. An intermittent fault of any size shows as a product that is not bit-identical to the
first one (the same kernel on the same inputs is deterministic). The memory test writes fixed
patterns (0x00, 0xFF, 0xAA, 0x55) and an address-derived pattern over a configurable amount of
RAM (and device memory) and reads every byte back.

The ``matmul`` and ``after_write`` hooks exist so tests can inject a faulty ALU or a flipped
memory cell; production runs use ``torch.matmul`` and nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from trainguard.health.deep.config import StressConfig
from trainguard.health.report import HealthReport, NodeAction, healthy, unhealthy

CHECK_STRESS = "InstanceStress"
FAULT_STRESS = "DeepHealthCheckFailure"
PATTERNS = (0x00, 0xFF, 0xAA, 0x55)
ADDRESS_MODULUS = 251  # prime, so the pattern does not repeat on power-of-two boundaries
MIB = 1024 * 1024
ADDRESS_CHUNK = ADDRESS_MODULUS * 16384  # ~4 MiB, a whole number of periods

Tensor = Any  # torch.Tensor; torch is imported lazily so the CLI starts fast
MatMul = Callable[[Tensor, Tensor], Tensor]
AfterWrite = Callable[[Tensor], None]
Clock = Callable[[], float]


def stress_devices(config: StressConfig) -> list[str]:
    """``cuda:i`` for every visible GPU, and ``cpu`` (always when there is no GPU)."""
    gpus = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return [*gpus, "cpu"] if config.include_cpu or not gpus else gpus


def burn(
    device: str,
    config: StressConfig,
    *,
    matmul: MatMul | None = None,
    clock: Clock = time.perf_counter,
) -> dict[str, Any]:
    """Multiply random matrices on ``device`` for ``duration_s``, verifying every product.

    Args:
        device: where to multiply.
        config: size, duration, tolerance, seed.
        matmul: the product under test (tests inject a faulty one).
        clock: the burn's timer in seconds (tests pass one that ticks per reading, so the
            number of products does not depend on how loaded the machine is).

    Returns:
        Evidence: ``iterations``, ``tflops``, ``maxResidual`` (in units of the rounding bound),
        ``corrupted`` (iterations whose product failed the check).
    """
    multiply = matmul or torch.matmul
    gen = torch.Generator().manual_seed(config.seed)
    n = config.matrix_size
    a = (torch.rand(n, n, generator=gen) * 2 - 1).to(device)
    b = (torch.rand(n, n, generator=gen) * 2 - 1).to(device)
    r = (torch.rand(n, 1, generator=gen, dtype=torch.float64) * 2 - 1).to(device)
    a64, b64 = a.double(), b.double()
    expected = a64 @ (b64 @ r)
    bound = n * torch.finfo(torch.float32).eps * (a64.abs() @ (b64.abs() @ r.abs()))
    iterations = corrupted = unstable = 0
    worst = 0.0
    first = None
    start = clock()
    while clock() - start < config.duration_s:
        c = multiply(a, b)
        residual = float(((c.double() @ r - expected).abs() / bound).max())
        worst = max(worst, residual)
        if first is None:
            first = c
        same = bool(torch.equal(c, first))
        corrupted += int(residual > config.tolerance or not same)
        unstable += int(not same)
        iterations += 1
    _sync(device)
    elapsed = clock() - start
    return {
        "iterations": iterations,
        "seconds": round(elapsed, 3),
        "tflops": round(2 * n**3 * iterations / elapsed / 1e12, 4),
        "maxResidual": round(worst, 4),
        "corrupted": corrupted,
        "differentFromFirst": unstable,
    }


def memory_patterns(
    device: str, megabytes: int, *, after_write: AfterWrite | None = None
) -> dict[str, Any]:
    """Write and verify the patterns over ``megabytes`` of ``device`` memory.

    Returns:
        Evidence: ``bytes``, ``patterns``, ``mismatches`` (bytes that read back wrong),
        ``gbPerSecond`` (write + verify throughput).
    """
    size = megabytes * MIB
    buffer = torch.empty(size, dtype=torch.uint8, device=device)
    period = (torch.arange(ADDRESS_CHUNK, device=device) % ADDRESS_MODULUS).to(torch.uint8)
    mismatches = 0
    start = time.perf_counter()
    for pattern in (*PATTERNS, None):
        if pattern is None:
            for chunk in _chunks(buffer, size):
                chunk.copy_(period[: chunk.numel()])
        else:
            buffer.fill_(pattern)
        if after_write is not None:
            after_write(buffer)
        if pattern is None:
            for chunk in _chunks(buffer, size):
                mismatches += int((chunk != period[: chunk.numel()]).sum())
        else:
            mismatches += int((buffer != pattern).sum())
    _sync(device)
    elapsed = time.perf_counter() - start
    return {
        "bytes": size,
        "patterns": len(PATTERNS) + 1,
        "mismatches": mismatches,
        "gbPerSecond": round(2 * size * (len(PATTERNS) + 1) / elapsed / 1e9, 3),
    }


def _chunks(buffer: Tensor, size: int) -> list[Tensor]:
    return [buffer[i : i + ADDRESS_CHUNK] for i in range(0, size, ADDRESS_CHUNK)]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


class InstanceStress:
    """The deep stress check of one node (this machine's devices).

    Args:
        config: durations, sizes, tolerance.
        matmul: the product under test (tests inject a faulty one).
        after_write: called after each memory pattern is written (tests flip a byte).
        clock: the burn's timer (see `burn`).
    """

    name = CHECK_STRESS

    def __init__(
        self,
        config: StressConfig | None = None,
        *,
        matmul: MatMul | None = None,
        after_write: AfterWrite | None = None,
        clock: Clock = time.perf_counter,
    ) -> None:
        self.config = config or StressConfig()
        self._matmul = matmul
        self._after_write = after_write
        self._clock = clock

    def check(self, now: float) -> HealthReport:
        """Burn and pattern-test every device; Unhealthy (replace) on any wrong result."""
        evidence: dict[str, Any] = {}
        problems: list[str] = []
        for device in stress_devices(self.config):
            compute = burn(device, self.config, matmul=self._matmul, clock=self._clock)
            megabytes = self.config.memory_mb if device == "cpu" else self.config.device_memory_mb
            memory = memory_patterns(device, megabytes, after_write=self._after_write)
            evidence[device] = {"compute": compute, "memory": memory}
            if compute["corrupted"]:
                problems.append(
                    f"{device}: {compute['corrupted']} of {compute['iterations']} products "
                    f"wrong (residual {compute['maxResidual']}x the rounding bound)"
                )
            if memory["mismatches"]:
                problems.append(f"{device}: {memory['mismatches']} bytes read back wrong")
        if not problems:
            return healthy(
                self.name,
                now,
                f"{len(evidence)} device(s) computed and stored correctly",
                devices=evidence,
            )
        return unhealthy(
            self.name,
            now,
            reason="SilentDataCorruption",
            message="; ".join(problems),
            fault_type=FAULT_STRESS,
            action=NodeAction.REPLACE,
            devices=evidence,
        )
