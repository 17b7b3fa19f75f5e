"""The MTC API's operations, across this node's memory and its peers.

Routes parse and check the request, then call one method here; a method either returns what
the route answers or raises one of our errors, which the route maps to a status code. The
``local`` flag is set for calls from a peer server (see `trainguard.checkpoint.mtc.peers`):
those are answered from this node alone and never forwarded.

"Latest" follows the service's meaning that the library's reader relies on: the newest steps
that are *complete* — every one of the namespace's ``num_ranks`` ranks (data ranks and the
metadata rank) holds a shard for them somewhere in the cluster — newest first, at most
``limit``. A step some rank never wrote, or lost with a node and its replica, is not offered, so
the reader never picks a step it cannot load.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from trainguard.checkpoint.mtc.limits import FieldError, MtcLimits
from trainguard.checkpoint.mtc.metrics import MtcMetrics
from trainguard.checkpoint.mtc.namespaces import NamespaceConfig, NamespaceRegistry
from trainguard.checkpoint.mtc.peers import PeerSet
from trainguard.checkpoint.mtc.shardmeta import ShardChecksum
from trainguard.checkpoint.mtc.shards import ShardStore
from trainguard.errors import CheckpointCorrupt, CheckpointNotFound, NotFoundError, StorageFull

log = logging.getLogger("trainguard.checkpoint.mtc")


@dataclass
class MtcService:
    """One node's server state: namespaces, shards, peers, limits and metrics."""

    registry: NamespaceRegistry
    store: ShardStore
    peers: PeerSet
    limits: MtcLimits
    metrics: MtcMetrics

    # --- namespaces ------------------------------------------------------------------------
    def namespace(self, name: str, *, local: bool) -> NamespaceConfig:
        """The config of ``name``, adopted from a peer when only a peer knows it.

        Raises:
            NotFoundError: no reachable server knows the namespace.
        """
        config = self.registry.get(name)
        if config is None and not local:
            config = self.peers.namespace(name)
            if config is not None:
                self.registry.create(name, config)
        if config is None:
            raise NotFoundError(f"namespace {name!r} not found")
        return config

    def create_namespace(self, name: str, config: NamespaceConfig, *, local: bool) -> bool:
        """Create ``name`` here and on the peers; False when it existed with this config."""
        if config.num_ranks > self.limits.max_ranks:
            raise FieldError("num_ranks", f"{config.num_ranks} is over {self.limits.max_ranks}")
        created = self.registry.create(name, config)
        if not local:
            self.peers.create_namespace(name, config)
        return created

    def delete_namespace(self, name: str, *, local: bool) -> None:
        """Delete ``name`` and its shards here and on the peers.

        Raises:
            NotFoundError: no server knew it.
        """
        known = self.registry.forget(name)
        self.store.drop(name)
        if not local:
            known = self.peers.broadcast("DELETE", f"/v1/cp/namespaces/{name}") > 0 or known
        if not known:
            raise NotFoundError(f"namespace {name!r} not found")

    def reset(self, *, local: bool) -> None:
        """Delete every namespace and shard here and on the peers."""
        for name in self.registry.names():
            self.registry.forget(name)
            self.store.drop(name)
        if not local:
            self.peers.broadcast("POST", "/v1/cp/cluster/reset")

    # --- shards ----------------------------------------------------------------------------
    def put(
        self, name: str, rank: int, step: int, body: bytes, meta: ShardChecksum, *, local: bool
    ) -> None:
        """Verify and commit a shard here, then replicate it to the ring's next server."""
        config = self.namespace(name, local=local)
        _check_rank(rank, config)
        meta.verify(body)
        started = time.monotonic()
        try:
            self.store.put(name, config, rank=rank, step=step, body=body, header=meta.text)
        except StorageFull:
            self.metrics.rejected_full.inc()
            raise
        if not local and self.peers.replicate(
            name, config, rank=rank, step=step, body=body, header=meta.text
        ):
            self.metrics.replicated.inc()
        self.metrics.put_seconds.observe(time.monotonic() - started)
        self.metrics.shard_bytes.observe(len(body))
        self.metrics.memory_used.set(self.store.used_bytes())

    def get(self, name: str, rank: int, step: int, *, local: bool) -> tuple[bytes, str]:
        """A shard from this node, else from a peer.

        Raises:
            CheckpointNotFound: no reachable server holds it.
            CheckpointCorrupt: the only copy found failed its checksum.
        """
        config = self.namespace(name, local=local)
        _check_rank(rank, config)
        damaged: CheckpointCorrupt | None = None
        try:
            return self.store.get(name, config, rank, step)
        except CheckpointCorrupt as exc:
            self.metrics.corrupt.inc()
            log.error("mtc: refusing a damaged shard: %s", exc)
            damaged = exc
        except CheckpointNotFound:
            pass
        fetched = None if local else self.peers.fetch(name, rank, step)
        if fetched is not None:
            self.metrics.peer_reads.inc()
            return fetched
        if damaged is not None:
            raise damaged
        raise CheckpointNotFound(f"{name}: no shard of rank {rank} step {step}")

    def delete(self, name: str, rank: int, step: int, *, local: bool) -> None:
        """Delete a shard here and on the peers.

        Raises:
            CheckpointNotFound: no server held it.
        """
        config = self.namespace(name, local=local)
        _check_rank(rank, config)
        found = self.store.delete(name, config, rank, step)
        if not local:
            path = f"/v1/cp/checkpoints/{name}/{rank}/{step}"
            found = self.peers.broadcast("DELETE", path) > 0 or found
        self.metrics.memory_used.set(self.store.used_bytes())
        if not found:
            raise CheckpointNotFound(f"{name}: no shard of rank {rank} step {step}")

    def inventory(self, name: str) -> dict[int, list[int]]:
        """This node's committed steps per rank."""
        return self.store.inventory(name, self.namespace(name, local=True))

    def latest(self, name: str, limit: int, *, local: bool) -> list[int]:
        """The newest complete steps, newest first."""
        config = self.namespace(name, local=local)
        held: dict[int, set[int]] = {}
        views = [self.inventory(name)] + ([] if local else self.peers.inventories(name))
        for view in views:
            for rank, steps in view.items():
                held.setdefault(rank, set()).update(steps)
        ranks = [held.get(rank, set()) for rank in range(config.num_ranks)]
        complete = set.intersection(*ranks) if ranks else set()
        return sorted(complete, reverse=True)[:limit]


def _check_rank(rank: int, config: NamespaceConfig) -> None:
    if rank >= config.num_ranks:
        raise FieldError(
            "rank", f"{rank} is not below the namespace's num_ranks {config.num_ranks}"
        )
