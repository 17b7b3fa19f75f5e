"""After a resize the workers learn the new data-parallel size from the usual environment.

The controller renumbers node ranks 0..n-1 and sends ``nnodes``; the agent derives torchrun's
variables from them on every ``/start``, so a script using ``WORLD_SIZE``/``RANK`` or
torch.distributed sees the new size with no trainguard-specific code.
"""

from __future__ import annotations

from trainguard.agent.protocol import StartRequest
from trainguard.agent.rendezvous import assignment_from, worker_envs


def envs_for(rank: int, nnodes: int, *, nproc: int = 2) -> dict[int, dict[str, str]]:
    start = StartRequest.model_validate(
        {"rank": rank, "nnodes": nnodes, "faultCount": 1, "master_addr": "h", "master_port": 1}
    )
    return worker_envs(
        assignment_from(start, nproc=nproc),
        role="default",
        run_id="job",
        max_restarts=0,
        extra={},
        inherited={},
    )


def test_a_node_renumbered_by_a_shrink_gets_the_new_ranks_and_size() -> None:
    before, after = envs_for(2, 3), envs_for(1, 2)  # the node was rank 2 of 3, now 1 of 2
    assert [(e["RANK"], e["WORLD_SIZE"]) for e in before.values()] == [("4", "6"), ("5", "6")]
    assert [(e["RANK"], e["WORLD_SIZE"]) for e in after.values()] == [("2", "4"), ("3", "4")]
    assert (after[0]["GROUP_RANK"], after[0]["GROUP_WORLD_SIZE"]) == ("1", "2")
    assert after[1]["LOCAL_RANK"] == "1" and after[1]["LOCAL_WORLD_SIZE"] == "2"


def test_a_grow_gives_the_new_node_the_last_ranks() -> None:
    grown = envs_for(2, 3, nproc=1)
    assert (grown[0]["RANK"], grown[0]["WORLD_SIZE"], grown[0]["NNODES"]) == ("2", "3", "3")
