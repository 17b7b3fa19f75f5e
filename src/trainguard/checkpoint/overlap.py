"""Snapshots overlapped with compute: the memory-tier copy runs beside the next step's work.

A synchronous save blocks the loop for one copy of the state into shared memory (the memcpy
floor). But parameters and optimizer state only change inside ``optimizer.step()``, so the copy
can run on its own thread while the next forward and backward run, as long as it ends before
the next ``optimizer.step()``. `CheckpointManager.save_async` takes references to the tensors
(no copy) and hands the copy to a `SnapshotThread`; `CheckpointManager.fence` waits for it, and
`CheckpointManager.fence_before_step` registers that wait as the optimizer's step pre-hook, so
the loop stalls only if the copy is not done by then. The thread gets CPU time because torch
releases the GIL inside its copy kernels.

State that changes outside ``optimizer.step()`` (BatchNorm running statistics in train mode,
an EMA updated in forward) needs a fence before that change as well, e.g.
``module.register_forward_pre_hook(lambda *_: manager.fence())``.

On a GPU the copy is device-to-host. `DeviceOrder` records an event on each device's current
stream when the save is requested (after the kernels of ``optimizer.step()`` were queued); the
snapshot thread makes its own side stream wait for that event, copies there and synchronises
only that stream, so the kernels of the next step keep running. (Written to torch's stream
semantics; no GPU was available to exercise it when this was written.)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch


class SnapshotThread:
    """Runs one snapshot copy at a time beside the training thread.

    The thread is created on the first copy (never at import: a process forked by the agent's
    zygote must start without threads).
    """

    def __init__(self, name: str = "trainguard-snapshot") -> None:
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def start(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the thread (after the copy in flight, if any, is done)."""
        self.wait()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        self._pending = self._executor.submit(work)

    @property
    def busy(self) -> bool:
        return self._pending is not None

    def wait(self) -> float:
        """Wait for the copy in flight; the seconds waited. Re-raises what the copy raised."""
        pending, self._pending = self._pending, None
        if pending is None:
            return 0.0
        began = time.monotonic()
        pending.result()
        return time.monotonic() - began

    def close(self) -> None:
        """Wait for the copy in flight (its error is the caller's), then end the thread."""
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None


@dataclass
class InFlight:
    """A save whose copy runs: its step, the loop time it took so far, the slot waits before."""

    step: int
    blocked_s: float
    waits_before_s: float


class DeviceOrder:
    """Orders a snapshot thread's device-to-host copies after the kernels queued before it.

    Args:
        tensors: the state's tensors; those on CUDA devices decide which streams to order.
    """

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        devices = {t.device for t in tensors if t.is_cuda}
        self._events: dict[torch.device, Any] = {}
        for device in devices:
            event = torch.cuda.Event()  # type: ignore[no-untyped-call]
            event.record(torch.cuda.current_stream(device))
            self._events[device] = event

    @contextlib.contextmanager
    def copying(self) -> Iterator[None]:
        """Run the copies inside this on the snapshot thread: side streams that wait for the
        recorded events, synchronised before it exits (nothing to do for CPU state)."""
        if not self._events:
            yield
            return
        streams = {device: torch.cuda.Stream(device) for device in self._events}  # type: ignore[no-untyped-call]
        with contextlib.ExitStack() as stack:
            for device, stream in streams.items():
                stream.wait_event(self._events[device])
                stack.enter_context(torch.cuda.stream(stream))
            yield
        for stream in streams.values():
            stream.synchronize()
