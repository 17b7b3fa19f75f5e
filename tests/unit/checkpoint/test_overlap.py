"""Overlapped snapshots: the copy runs beside the next step, and still holds exactly step N.

The model's parameters and Adam's state change on every ``optimizer.step()``. The copy into the
memory tier is slowed down on purpose (a sleep before it starts), so a snapshot that did not
wait for the fence would see the next step's values: with the fence, every saved step equals a
clone taken at save time; without it (the control), it does not.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from trainguard.checkpoint import CheckpointManager, slot_layout
from trainguard.checkpoint.background import lower_priority

from .conftest import assert_same

SLOW_COPY_S = 0.2


def _state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    return {"model": model.state_dict(), "optim": optimizer.state_dict()}


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


@pytest.fixture
def slow_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    original = slot_layout.copy_into

    def slow(*args: Any) -> None:
        time.sleep(SLOW_COPY_S)
        original(*args)

    monkeypatch.setattr(slot_layout, "copy_into", slow)


def _train(manager: CheckpointManager, steps: int) -> dict[int, Any]:
    """Save asynchronously after every step, the optimizer fenced; each step's state, cloned."""
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 64)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    manager.fence_before_step(optimizer)
    expected = {}
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        model(torch.randn(4, 64)).pow(2).mean().backward()
        optimizer.step()
        assert manager.save_async(step, _state(model, optimizer))
        expected[step] = _clone(_state(model, optimizer))
    manager.fence()
    return expected


def _saved(manager: CheckpointManager, step: int, like: Any) -> Any:
    target = _clone(like)
    manager.memory.read(step, target)
    return target


@pytest.mark.usefixtures("slow_copy")
def test_a_fenced_snapshot_is_exactly_the_state_of_its_step(shm_root: Path) -> None:
    steps = 4
    with CheckpointManager(job="j", shm_dir=shm_root, memory_every=1, memory_keep=steps) as ckpt:
        expected = _train(ckpt, steps)
        assert ckpt.memory.steps() == list(range(1, steps + 1))
        for step, state in expected.items():
            assert_same(_saved(ckpt, step, state), state)
        assert ckpt.stats.saves == steps


@pytest.mark.usefixtures("slow_copy")
def test_without_the_fence_the_snapshot_sees_the_next_step(shm_root: Path) -> None:
    """The control: the test above would fail if the fence did not wait."""
    with CheckpointManager(job="j", shm_dir=shm_root, memory_every=1, memory_keep=3) as ckpt:
        torch.manual_seed(0)
        model = torch.nn.Linear(64, 64)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
        optimizer.zero_grad()
        model(torch.randn(4, 64)).pow(2).mean().backward()
        optimizer.step()
        ckpt.save_async(1, _state(model, optimizer))
        expected = _clone(_state(model, optimizer))
        optimizer.step()  # no fence: changes the tensors while the (slow) copy has not begun
        ckpt.fence()
        saved = _saved(ckpt, 1, expected)
        assert not torch.equal(saved["model"]["weight"], expected["model"]["weight"])


def test_the_loop_waits_only_when_the_copy_is_not_done(shm_root: Path) -> None:
    with CheckpointManager(job="j", shm_dir=shm_root, memory_every=1) as ckpt:
        state = {"w": torch.arange(1000.0)}
        ckpt.save_async(1, state)
        ckpt.fence()
        ckpt.fence()  # nothing in flight: a no-op
        ckpt.wait()  # the checksum, on the background thread
        assert ckpt.stats.saves == 1 and not ckpt.busy
        assert ckpt.save_async(2, state) and ckpt.save(3, state)  # save fences the one before
        assert ckpt.stats.saves == 3 and ckpt.memory.steps()[-1] == 3


def test_an_error_of_the_copy_is_raised_by_the_fence(
    shm_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise OSError("no space left on device")

    with CheckpointManager(job="j", shm_dir=shm_root, memory_every=1) as ckpt:
        monkeypatch.setattr(slot_layout, "copy_into", broken)
        assert ckpt.save_async(1, {"w": torch.ones(4)})
        with pytest.raises(OSError, match="no space"):
            ckpt.fence()
        monkeypatch.undo()
        assert ckpt.save(2, {"w": torch.ones(4)}) and ckpt.memory.steps() == [2]


def test_the_background_thread_runs_at_a_lower_priority() -> None:
    niceness: list[int] = []

    def probe() -> None:
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        lower_priority(5)
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    before, after = niceness
    assert after == min(19, before + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # this thread
