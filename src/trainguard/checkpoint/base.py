"""What every storage tier offers, so the manager, restore and the contract tests treat the
memory, peer and durable tiers alike.

A tier stores *payloads*: ``{"state": <state dict>, "user_content": <anything picklable>}``
split by `trainguard.checkpoint.tree.flatten`. Reading merges the stored state into the
caller's state dict in place and returns the user content.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import torch

from trainguard.checkpoint.tree import Resolver, TensorRef, fits, local_tensor, merge

STATE_KEY = "state"
USER_KEY = "user_content"


class TierName(StrEnum):
    """Where a restored step came from (reported to the agent and into the job status)."""

    MEMORY = "memory"
    PEER = "peer"
    DURABLE = "durable"
    NONE = "none"


@dataclass(frozen=True)
class Restored:
    """The outcome of a restore.

    Attributes:
        step: the step loaded, or ``None`` when nothing was found (training starts fresh).
        tier: where it came from.
        user_content: the ``user_content`` saved with the step (``None`` when fresh).
        world_size: ranks that restored it (the job's size now).
        saved_world_size: ranks that saved the step loaded (``None`` when fresh); differs
            from ``world_size`` after a resize, when only the durable tier can serve it.
        reason: why a faster tier or a newer step was not used (a memory tier saved at
            another world size, copies from different runs, an unreadable step), else
            ``None``; reported to the agent and shown in the job's ``status.resumes``.
    """

    step: int | None
    tier: TierName
    user_content: Any = None
    world_size: int | None = None
    saved_world_size: int | None = None
    reason: str | None = None


class Tier(Protocol):
    """A place checkpoints are kept. Implementations: memory, durable (and peer)."""

    name: TierName

    def steps(self) -> list[int]:
        """Committed steps this rank can read from this tier, oldest first."""
        ...

    def read(self, step: int, target: MutableMapping[str, Any]) -> Any:
        """Verify ``step`` and merge its state into ``target``; return its user content.

        Raises:
            CheckpointCorrupt: a checksum, size or record does not match.
            CheckpointNotFound: the step is not (or no longer) committed.
        """
        ...


def payload(state: Any, user_content: Any) -> dict[str, Any]:
    """The dict a tier stores for one save."""
    return {STATE_KEY: state, USER_KEY: user_content}


def in_place(source_of: Any) -> Resolver:
    """A resolver that copies ``source_of(ref)`` into the caller's tensor when it fits and
    otherwise hands back an owned copy (never a view of tier memory, which is reused)."""

    def resolve(ref: TensorRef, current: Any) -> torch.Tensor:
        source: torch.Tensor = source_of(ref)
        if fits(current, ref):
            local_tensor(current).copy_(source)
            return current  # type: ignore[no-any-return]
        return source.clone()

    return resolve


def merge_payload(target: MutableMapping[str, Any], skeleton: Any, resolve: Resolver) -> Any:
    """Merge a payload skeleton's state into ``target``; return its materialised user content."""
    merge(target, skeleton[STATE_KEY], resolve)
    holder: dict[str, Any] = {}
    merge(holder, {USER_KEY: skeleton[USER_KEY]}, resolve)
    return holder[USER_KEY]
