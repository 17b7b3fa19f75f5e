"""One rank of a DCP save/load through ``amzn-sagemaker-checkpointing``, as HyperPod's docs show.

Run by the tests as ``python dcp_worker.py <namespace> <steps,comma,separated> [load-only]``
with RANK, WORLD_SIZE, MASTER_ADDR/PORT set, and ``http_proxy`` pointing at an MTC server
(the library always uses its default base URL). Saves every step with ``async_save`` and the
tiered writer, then loads with the reader and no step (so the reader asks the server for the
latest) and checks the weights and step it got. Prints ``LOADED <step>`` on success.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
from amzn_sagemaker_checkpointing.checkpointing.filesystem.filesystem import (
    SageMakerTieredStorageReader,
    SageMakerTieredStorageWriter,
)
from amzn_sagemaker_checkpointing.config.sagemaker_checkpoint_config import (
    SageMakerCheckpointConfig,
)
from torch.distributed.checkpoint import async_save, load


def model_for(step: int) -> torch.nn.Module:
    torch.manual_seed(step)
    return torch.nn.Linear(16, 8)


def main(namespace: str, steps: list[int], *, save: bool) -> None:
    dist.init_process_group(backend="gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    config = SageMakerCheckpointConfig(namespace=namespace, world_size=world)
    for step in steps if save else []:
        own = torch.full((4,), float(rank * 1000 + step))  # a key only this rank saves
        state = {"model": model_for(step).state_dict(), f"rank{rank}": own, "step": step}
        writer = SageMakerTieredStorageWriter(checkpoint_config=config, step=step)
        async_save(state_dict=state, storage_writer=writer).result()
        dist.barrier()
    mine = torch.zeros(4)
    target = {"model": torch.nn.Linear(16, 8).state_dict(), f"rank{rank}": mine, "step": -1}
    load(target, storage_reader=SageMakerTieredStorageReader(checkpoint_config=config))
    expected = model_for(steps[-1]).state_dict()
    assert target["step"] == steps[-1], target["step"]
    assert torch.equal(mine, torch.full((4,), float(rank * 1000 + steps[-1]))), mine
    for key, tensor in expected.items():
        assert torch.equal(target["model"][key], tensor), key
    print(f"LOADED {target['step']}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2].split(",")], save=sys.argv[3:] != ["load-only"])
