"""The peer tier, seen from a worker: its memory-tier steps as replicated to a peer node.

When this node's memory is gone (the node was replaced, or the files were deleted) the agent
can still pull the shard back from the peer agent that holds a replica (see
`trainguard.checkpoint.replication`). The worker only talks to its own agent: it asks which
steps the peers hold (``ckpt_peer_steps``) and to fetch one (``ckpt_fetch``), then reads and
verifies the fetched blob itself and deletes it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from trainguard import ipc
from trainguard.checkpoint import manifest
from trainguard.checkpoint.base import TierName
from trainguard.checkpoint.blob import read_blob_file
from trainguard.checkpoint.report import AgentReporter
from trainguard.errors import CheckpointCorrupt, CheckpointError, CheckpointNotFound


class PeerTier:
    """Replicas of one rank's memory tier on peer nodes, reached through the local agent.

    Args:
        reporter: the connection to the local agent (a long timeout: fetches move whole shards).
        job: job name.
        rank: global rank whose replicas are read.
        world_size: steps saved with another world size are refused.
    """

    name = TierName.PEER

    def __init__(self, reporter: AgentReporter, *, job: str, rank: int, world_size: int) -> None:
        self.reporter, self.job, self.rank, self.world_size = reporter, job, rank, world_size

    def steps(self) -> list[int]:
        """Steps some peer holds for this rank at this world size (none when the agent
        cannot say); a replica saved at another world size is old rank ``rank``'s, not ours."""
        reply = self.reporter.request(ipc.CKPT_PEER_STEPS, job=self.job, rank=self.rank)
        if reply is None:
            raise CheckpointError("peer tier: the agent did not answer ckpt_peer_steps")
        sizes = reply.get("world_sizes") or {}
        steps = (int(s) for s in reply.get("steps", []))
        mine = self.world_size
        return sorted(s for s in steps if int(sizes.get(str(s), mine)) == mine)

    def read(
        self, step: int, target: MutableMapping[str, Any], *, generation: str | None = None
    ) -> Any:
        """Fetch ``step`` from a peer into local memory, verify and merge it, delete the copy.

        Args:
            step: the step.
            target: the caller's state dict.
            generation: the run the replica must come from (`ShardMeta.generation`), when
                the other ranks load copies of a known run.
        """
        reply = self.reporter.request(ipc.CKPT_FETCH, job=self.job, rank=self.rank, step=step)
        if reply is None or "path" not in reply:
            why = reply.get("error") if reply else "the agent did not answer"
            raise CheckpointNotFound(f"peer tier: step {step} of rank {self.rank}: {why}")
        meta_path = Path(str(reply["path"]))
        try:
            meta = manifest.read_meta(meta_path)
            if (meta.rank, meta.step, meta.world_size) != (self.rank, step, self.world_size):
                raise CheckpointCorrupt(
                    f"{meta_path}: replica is rank {meta.rank} step {meta.step} of world "
                    f"{meta.world_size}, wanted rank {self.rank} step {step} of {self.world_size}"
                )
            if None not in (generation, meta.generation) and generation != meta.generation:
                raise CheckpointCorrupt(
                    f"{meta_path}: replica of step {step} was saved by run {meta.generation}, "
                    f"the other ranks load run {generation}"
                )
            return read_blob_file(meta_path.parent / meta.slot, meta, target)
        finally:
            meta_path.unlink(missing_ok=True)
            (meta_path.parent / f"step_{step}.bin").unlink(missing_ok=True)
