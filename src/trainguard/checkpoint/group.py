"""Collectives of the checkpoint library, on a process group of their own.

When torch.distributed is initialized, checkpoint collectives (the durable save's plan and
gather, the restore agreement) run on a dedicated gloo group created once per manager, so they
never interleave with training collectives on the default (often NCCL) group and can run from
the background thread. Without torch.distributed every function degrades to the one-rank case.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import torch.distributed as dist

from trainguard.errors import UsageError


@dataclass(frozen=True)
class Topology:
    """Who this process is in the checkpoint group.

    Attributes:
        rank: rank in the group (the global rank).
        world_size: ranks in the group.
        group: the dedicated gloo group, or ``None`` when torch.distributed is not initialized.
    """

    rank: int
    world_size: int
    group: Any = None

    @property
    def distributed(self) -> bool:
        """Whether collectives are needed."""
        return self.group is not None


def topology(*, rank: int | None = None, world_size: int | None = None) -> Topology:
    """This process's place: torch.distributed when initialized, else arguments or env.

    Creating the gloo group is collective: every rank must construct its manager in step.

    Raises:
        UsageError: explicit rank/world size disagree with torch.distributed or each other.
    """
    if dist.is_available() and dist.is_initialized():
        actual = (dist.get_rank(), dist.get_world_size())
        if (rank, world_size) != (None, None) and (rank, world_size) != actual:
            raise UsageError(f"rank/world_size {rank}/{world_size} != torch.distributed {actual}")
        return Topology(actual[0], actual[1], dist.new_group(backend="gloo"))
    resolved = Topology(
        rank if rank is not None else int(os.environ.get("RANK", "0")),
        world_size if world_size is not None else int(os.environ.get("WORLD_SIZE", "1")),
    )
    if not 0 <= resolved.rank < resolved.world_size:
        raise UsageError(f"rank {resolved.rank} is outside world_size {resolved.world_size}")
    return resolved


def gather_all(topo: Topology, value: Any) -> list[Any]:
    """``value`` of every rank, in rank order (picklable values)."""
    if not topo.distributed:
        return [value]
    gathered: list[Any] = [None] * topo.world_size
    dist.all_gather_object(gathered, value, group=topo.group)
    return gathered


def shared_token(topo: Topology) -> str:
    """A fresh id that every rank of the group gets the same of (rank 0's, broadcast).

    Without torch.distributed each process makes its own: ranks that are not coordinated
    cannot agree on anything, and never compare these ids either.
    """
    holder = [uuid.uuid4().hex]
    if topo.distributed:
        dist.broadcast_object_list(holder, src=0, group=topo.group)
    return str(holder[0])


def all_true(topo: Topology, flag: bool) -> bool:
    """True when ``flag`` is true on every rank."""
    if not topo.distributed:
        return flag
    gathered: list[Any] = [None] * topo.world_size
    dist.all_gather_object(gathered, bool(flag), group=topo.group)
    return all(gathered)


def destroy(topo: Topology) -> None:
    """Destroy the dedicated group (when torch.distributed is still up)."""
    if topo.group is not None and dist.is_initialized():
        dist.destroy_process_group(topo.group)
