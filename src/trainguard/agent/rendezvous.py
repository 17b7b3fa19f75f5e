"""The rendezvous the controller hands out, turned into each worker's environment.

As in HyperPod (reference §b.4), no c10d rendezvous runs between agents: ``POST /start``
carries this node's rank, the node count, the master endpoint and the fault count, and the
agent derives everything torchrun would have (global rank = node rank x nproc + local rank,
``WORLD_SIZE`` = nproc x nnodes, ``TORCHELASTIC_RESTART_COUNT`` = ``JOB_RESTART_COUNT`` =
faultCount). Pure functions, so the arithmetic is unit-tested without processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainguard import constants as c
from trainguard.agent.protocol import PROGRESS_PREFIX, UpdateRequest


@dataclass(frozen=True)
class Assignment:
    """What this node runs in one start: its place in the job and the agreed resume step."""

    node_rank: int
    nnodes: int
    nproc: int
    master_addr: str
    master_port: int
    fault_count: int
    resume_step: int | None = None

    @property
    def world_size(self) -> int:
        """Workers in the whole job."""
        return self.nproc * self.nnodes

    def global_rank(self, local_rank: int) -> int:
        """Global rank of this node's worker ``local_rank``."""
        return self.node_rank * self.nproc + local_rank

    def local_rank_of(self, global_rank: int) -> int | None:
        """This node's local rank for ``global_rank``, or None when another node runs it."""
        local = global_rank - self.node_rank * self.nproc
        return local if 0 <= local < self.nproc else None


def assignment_from(request: UpdateRequest, *, nproc: int) -> Assignment:
    """The assignment a ``/start`` (or ``/update``) request describes."""
    progress = getattr(request, "progress", None) or {}
    return Assignment(
        node_rank=request.rank,
        nnodes=request.nnodes,
        nproc=nproc,
        master_addr=request.master_addr,
        master_port=request.master_port,
        fault_count=request.fault_count,
        resume_step=resume_step(progress),
    )


def resume_step(progress: Mapping[str, Any]) -> int | None:
    """The step the controller agreed on: ``progress["trainguard"]["progressCount"]``."""
    entry = progress.get(PROGRESS_PREFIX)
    count = entry.get("progressCount") if isinstance(entry, Mapping) else None
    if isinstance(count, bool) or not isinstance(count, int):
        return None
    return count


def worker_envs(
    assignment: Assignment,
    *,
    role: str,
    run_id: str,
    max_restarts: int,
    extra: Mapping[str, str],
    inherited: Mapping[str, str],
) -> dict[int, dict[str, str]]:
    """Environment of each local rank (torchrun's variables plus ``extra``).

    Args:
        assignment: this node's place in the job.
        role: torchrun's ``--role``.
        run_id: ``TORCHELASTIC_RUN_ID``.
        max_restarts: reported as ``TORCHELASTIC_MAX_RESTARTS``.
        extra: variables every worker gets (socket path, shm dir, job name...).
        inherited: the agent's environment, to keep user choices such as OMP_NUM_THREADS.

    Returns:
        Local rank -> variables to set (on top of the inherited environment).
    """
    shared = {
        c.ENV_LOCAL_WORLD_SIZE: str(assignment.nproc),
        c.ENV_WORLD_SIZE: str(assignment.world_size),
        c.ENV_GROUP_RANK: str(assignment.node_rank),
        c.ENV_GROUP_WORLD_SIZE: str(assignment.nnodes),
        c.ENV_ROLE_NAME: role,
        c.ENV_ROLE_WORLD_SIZE: str(assignment.world_size),
        c.ENV_MASTER_ADDR: assignment.master_addr,
        c.ENV_MASTER_PORT: str(assignment.master_port),
        c.ENV_RESTART_COUNT: str(assignment.fault_count),
        c.ENV_JOB_RESTART_COUNT: str(assignment.fault_count),
        c.ENV_MAX_RESTARTS: str(max_restarts),
        c.ENV_RUN_ID: run_id,
        c.ENV_USE_AGENT_STORE: "False",
        c.ENV_NNODES: str(assignment.nnodes),
        c.ENV_NCCL_ASYNC_ERROR_HANDLING: inherited.get(c.ENV_NCCL_ASYNC_ERROR_HANDLING, "1"),
        **static_env(nproc=assignment.nproc, inherited=inherited),
        **extra,
    }
    if assignment.resume_step is not None:
        shared[c.ENV_RESUME_STEP] = str(assignment.resume_step)
    return {
        local: shared
        | {
            c.ENV_LOCAL_RANK: str(local),
            c.ENV_RANK: str(assignment.global_rank(local)),
            c.ENV_ROLE_RANK: str(assignment.global_rank(local)),
        }
        for local in range(assignment.nproc)
    }


def static_env(*, nproc: int, inherited: Mapping[str, str]) -> dict[str, str]:
    """Variables that do not depend on the rendezvous (hot spares start with them).

    Like torchrun, several workers per node get ``OMP_NUM_THREADS=1`` unless the user set it,
    so they do not oversubscribe the cores.
    """
    env = {"PYTHONUNBUFFERED": "1"}
    if nproc > 1 and c.ENV_OMP_NUM_THREADS not in inherited:
        env[c.ENV_OMP_NUM_THREADS] = "1"
    return env
