"""``save_checkpoint`` / ``load_checkpoint`` shaped like HyperPod's MTC examples.

MTC's examples pass model, optimizer, scheduler, user content, a checkpoint directory and a
step, and get back ``(model, optimizer, lr_scheduler, step, start_batch_index)``. These helpers
keep that shape over one `CheckpointManager` per durable directory (created on first use and
closed at interpreter exit), so an MTC-style script changes its import and little else.
"""

from __future__ import annotations

import atexit
from typing import Any

from trainguard.checkpoint.manager import CheckpointManager

START_BATCH_KEY = "start_batch_index"
_managers: dict[str, CheckpointManager] = {}


def manager_for(checkpoint_dir: str, **options: Any) -> CheckpointManager:
    """The shared manager of ``checkpoint_dir`` (``options`` apply on first use only)."""
    manager = _managers.get(checkpoint_dir)
    if manager is None:
        manager = CheckpointManager(checkpoint_dir, **options)
        _managers[checkpoint_dir] = manager
    return manager


def close_all() -> None:
    """Drain and close every manager the helpers created."""
    while _managers:
        _, manager = _managers.popitem()
        manager.close()


atexit.register(close_all)


def _state(model: Any, optimizer: Any, lr_scheduler: Any) -> dict[str, Any]:
    state = {"model": model.state_dict()}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if lr_scheduler is not None:
        state["lr_scheduler"] = lr_scheduler.state_dict()
    return state


def save_checkpoint(  # noqa: PLR0917 - the positional shape of HyperPod's MTC examples
    model: Any,
    optimizer: Any,
    lr_scheduler: Any,
    user_content: Any,
    checkpoint_dir: str,
    step: int,
    *,
    start_batch_index: int | None = None,
    **options: Any,
) -> bool:
    """Save model/optimizer/scheduler state at ``step`` (frequencies permitting).

    Args:
        model: a module (``state_dict``/``load_state_dict``).
        optimizer: an optimizer, or None.
        lr_scheduler: a scheduler, or None.
        user_content: anything picklable; returned by `load_checkpoint` in ``restored``.
        checkpoint_dir: durable URI (fsspec); also names the shared manager.
        step: training step.
        start_batch_index: the batch to resume from (defaults to ``step + 1``).
        **options: `CheckpointManager` options, used when the manager is created.

    Returns:
        Whether a checkpoint was taken.
    """
    content = {
        START_BATCH_KEY: step + 1 if start_batch_index is None else start_batch_index,
        "user_content": user_content,
    }
    state = _state(model, optimizer, lr_scheduler)
    return manager_for(checkpoint_dir, **options).save(step, state, user_content=content)


def load_checkpoint(
    model: Any,
    optimizer: Any,
    lr_scheduler: Any,
    checkpoint_dir: str,
    **options: Any,
) -> tuple[Any, Any, Any, int | None, int]:
    """Restore the newest step into the objects given.

    Returns:
        ``(model, optimizer, lr_scheduler, step, start_batch_index)``; ``step`` is None and
        ``start_batch_index`` 0 when there is nothing to resume from.
    """
    manager = manager_for(checkpoint_dir, **options)
    state = _state(model, optimizer, lr_scheduler)
    step = manager.load_latest(state)
    if step is None:
        return model, optimizer, lr_scheduler, None, 0
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if lr_scheduler is not None:
        lr_scheduler.load_state_dict(state["lr_scheduler"])
    content = manager.restored.user_content if manager.restored else None
    start = content.get(START_BATCH_KEY, step + 1) if isinstance(content, dict) else step + 1
    return model, optimizer, lr_scheduler, step, int(start)
