"""CheckpointManager: frequencies, tier preference, resume limit, helpers, cleanup, options."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from trainguard import constants as c
from trainguard.checkpoint import (
    CheckpointManager,
    TierName,
    helpers,
    load_checkpoint,
    save_checkpoint,
)
from trainguard.errors import UsageError

from .conftest import assert_same, fresh, trained


def state_of(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    return {"model": model.state_dict(), "optim": optimizer.state_dict()}


@pytest.fixture
def manager(shm_root: Path, tmp_path: Path) -> Any:
    made = CheckpointManager(
        tmp_path / "durable", job="j", shm_dir=shm_root, memory_every=2, durable_every=4
    )
    yield made
    made.close()


def test_frequencies_decide_which_steps_are_saved(manager: CheckpointManager) -> None:
    state = {"w": torch.ones(3)}
    taken = [step for step in range(1, 9) if manager.save(step, state)]
    manager.wait()
    assert taken == [2, 4, 6, 8]
    assert manager.memory.steps() == [6, 8]
    assert manager.durable is not None and manager.durable.steps() == [4, 8]
    assert manager.stats.saves == 4 and manager.stats.durable_saves == 2
    assert manager.errors.count == 0


def test_memory_is_preferred_then_durable(manager: CheckpointManager) -> None:
    model, optimizer = trained()
    manager.save(4, state_of(model, optimizer), user_content={"batch": 40})
    manager.wait()
    target = state_of(*fresh())
    assert manager.load_latest(target) == 4
    assert manager.restored is not None and manager.restored.tier is TierName.MEMORY
    assert manager.restored.user_content == {"batch": 40}
    shutil.rmtree(manager.memory.dir.parent)  # the node's memory is gone
    target = state_of(*fresh())
    assert manager.load_latest(target) == 4
    assert manager.restored.tier is TierName.DURABLE
    assert_same(state_of(model, optimizer)["model"], target["model"])


def test_resume_step_env_bounds_the_restore(
    manager: CheckpointManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    for step in (2, 4):
        manager.save(step, {"w": torch.full((2,), float(step))})
    manager.wait()
    monkeypatch.setenv(c.ENV_RESUME_STEP, "2")
    target: dict[str, Any] = {}
    assert manager.load_latest(target) == 2
    assert torch.equal(target["w"], torch.full((2,), 2.0))
    assert manager.memory.steps() == [2]  # the abandoned step 4 is dropped from memory
    monkeypatch.setenv(c.ENV_RESUME_STEP, "four")
    with pytest.raises(UsageError, match=c.ENV_RESUME_STEP):
        manager.load_latest(target)


def test_fresh_start_returns_none(manager: CheckpointManager) -> None:
    assert manager.load_latest({}) is None
    assert manager.restored is not None and manager.restored.tier is TierName.NONE


def test_standalone_manager_leaves_nothing_in_shm(tmp_path: Path) -> None:
    before = set(Path("/dev/shm").iterdir())
    manager = CheckpointManager(tmp_path, memory_every=1, durable_every=0)
    private = manager.memory.root
    manager.save(1, {"w": torch.randn(1000)})
    assert any(private.rglob("slot_*.bin"))
    manager.close()
    assert not private.exists()
    assert set(Path("/dev/shm").iterdir()) - before == set()


def test_memory_only_manager(shm_root: Path) -> None:
    with CheckpointManager(shm_dir=shm_root, memory_every=1) as manager:
        manager.save(3, {"w": torch.ones(2)})
        assert manager.durable is None
        assert manager.load_latest({}) == 3


def test_force_saves_off_schedule(manager: CheckpointManager) -> None:
    assert not manager.save(3, {"w": torch.ones(1)})
    assert manager.save(3, {"w": torch.ones(1)}, force=True)
    assert manager.memory.steps() == [3]


@pytest.mark.parametrize(
    ("option", "value"),
    [("memory_every", -1), ("durable_every", 1.5), ("memory_keep", 0), ("durable_keep", 0)],
)
def test_bad_options_name_the_field(shm_root: Path, option: str, value: Any) -> None:
    with pytest.raises(UsageError, match=option):
        CheckpointManager(shm_dir=shm_root, **{option: value})


def test_negative_step_and_closed_manager_are_refused(shm_root: Path) -> None:
    manager = CheckpointManager(shm_dir=shm_root)
    with pytest.raises(UsageError, match="step"):
        manager.save(-1, {})
    manager.close()
    with pytest.raises(UsageError, match="closed"):
        manager.save(10, {})


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_mtc_helpers_round_trip(shm_root: Path, tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/mtc"
    options = {"shm_dir": shm_root, "memory_every": 5, "durable_every": 10, "job": "mtc"}
    model, optimizer = trained()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3)
    scheduler.step()
    try:
        assert save_checkpoint(model, optimizer, scheduler, {"epoch": 2}, uri, 10, **options)
        helpers.manager_for(uri).wait()
        model2, optim2 = fresh()
        sched2 = torch.optim.lr_scheduler.StepLR(optim2, step_size=3)
        _, _, _, step, start = load_checkpoint(model2, optim2, sched2, uri)
        assert (step, start) == (10, 11)
        assert_same(model.state_dict(), model2.state_dict())
        assert_same(optimizer.state_dict(), optim2.state_dict())
        assert sched2.state_dict()["last_epoch"] == scheduler.state_dict()["last_epoch"]
    finally:
        helpers.close_all()


def test_durable_steps_of_an_abandoned_timeline_are_replaced(
    shm_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = CheckpointManager(
        tmp_path, job="t", shm_dir=shm_root, memory_every=4, durable_every=4, durable_keep=3
    )
    for step in (4, 8, 12):
        manager.save(step, {"w": torch.full((2,), float(step))})
    manager.wait()
    monkeypatch.setenv(c.ENV_RESUME_STEP, "4")  # the controller agreed on step 4
    assert manager.load_latest({}) == 4
    manager.save(8, {"w": torch.full((2,), 80.0)})
    manager.wait()
    assert manager.durable is not None and manager.durable.steps() == [4, 8]
    monkeypatch.delenv(c.ENV_RESUME_STEP)
    shutil.rmtree(manager.memory.dir)
    target: dict[str, Any] = {}
    assert manager.load_latest(target) == 8  # not the abandoned step 12
    assert torch.equal(target["w"], torch.full((2,), 80.0))
    manager.close()
