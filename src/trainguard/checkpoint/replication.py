"""Agent extension: replicate each committed memory step to the peer agent, fetch it back.

Loaded by the agent through its extension hook (``TRAINGUARD_AGENT_EXTENSIONS=
trainguard.checkpoint.replication``); it only uses the context's documented attributes, so the
checkpoint package never imports the agent. What it adds:

- worker socket ``ckpt_replicate {job, rank, step, meta_path, keep}``: read the committed blob
  from this node's memory tier and PUT it to the peer agent (the next node rank in
  ``/start.trainguard.peers``), which keeps the newest ``keep`` replicas per rank;
- worker socket ``ckpt_peer_steps {job, rank}``: the steps of ``rank`` the peers hold, and
  the world size each was saved at (``world_sizes``: a replica of old rank ``rank`` saved
  before a resize is not this rank's);
- worker socket ``ckpt_fetch {job, rank, step}``: pull that replica from a peer into this node's
  memory (``.fetched/``) and return the meta's ``path`` (``{error}`` when no peer has it);
- HTTP ``PUT|GET /trainguard/replicas/{job}/{rank}/{step}`` and ``GET .../{job}/{rank}``,
  behind the agent's bearer token like every route.

The worker waits for ``ckpt_replicate`` from its background thread while it pins the slot, so
the blob cannot be overwritten during the upload and the training loop never waits for it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request, Response

from trainguard import ipc
from trainguard.checkpoint import manifest
from trainguard.checkpoint.manifest import ShardMeta
from trainguard.checkpoint.replicas import FETCHED, REPLICAS, ReplicaStore
from trainguard.errors import CheckpointError, CheckpointNotFound, TrainguardError

log = logging.getLogger("trainguard.checkpoint")

META_HEADER = "X-Trainguard-Shard-Meta"
ROUTE = "/trainguard/replicas"
TIMEOUT = 120.0


class Replication:
    """The extension's state: stores, peers, an HTTP client.

    Args:
        context: the agent's `ExtensionContext` (``shm_dir``, ``token``, ``status()``,
            ``trainguard()``, ``add_socket_handler``, ``add_router``).
    """

    def __init__(self, context: Any) -> None:
        self.context = context
        shm = Path(context.shm_dir)
        self.replicas = ReplicaStore(shm / REPLICAS)
        self.fetched = ReplicaStore(shm / FETCHED)
        headers = {"Authorization": f"Bearer {context.token}"} if context.token else {}
        self.http = httpx.Client(headers=headers, timeout=TIMEOUT)

    # --- peers ------------------------------------------------------------------------
    def my_rank(self) -> int | None:
        """This agent's node rank, from its status."""
        assigned = self.context.status().assigned_rank
        return int(assigned) if assigned not in (None, "") else None

    def peer_urls(self) -> list[str]:
        """Other agents' URLs, the replication target (next node rank) first."""
        extension = self.context.trainguard()
        peers = sorted(extension.peers if extension else [], key=lambda p: p.rank)
        mine = self.my_rank()
        others = [p for p in peers if p.rank != mine and p.url]
        after = [p for p in others if mine is None or p.rank > mine]
        before = [p for p in others if p not in after]
        return [p.url.rstrip("/") for p in after + before]

    # --- socket handlers ---------------------------------------------------------------
    def replicate(self, message: dict[str, Any]) -> dict[str, Any]:
        """Push a committed step to the peer agent."""
        urls = self.peer_urls()
        if not urls:  # a one-node job: nothing to read the blob for
            return {"replicated": False, "reason": "no peer agent"}
        meta_path = Path(str(message["meta_path"]))
        meta = manifest.read_meta(meta_path)
        with open(meta_path.parent / meta.slot, "rb") as handle:
            blob = handle.read(meta.blob_bytes)
        url = f"{urls[0]}{ROUTE}/{meta.job}/{meta.rank}/{meta.step}"
        keep = int(message.get("keep", 2))
        reply = self.http.put(url, params={"keep": keep}, content=blob, headers=_meta_header(meta))
        if reply.status_code != 200:
            raise CheckpointError(
                f"peer {urls[0]} refused replica: {reply.status_code} {reply.text}"
            )
        return {"replicated": True, "peer": urls[0]}

    def peer_steps(self, message: dict[str, Any]) -> dict[str, Any]:
        """Steps of a rank that at least one peer holds."""
        job, rank = str(message["job"]), int(message["rank"])
        steps: set[int] = set()
        sizes: dict[str, int] = {}
        for url in self.peer_urls():
            try:
                reply = self.http.get(f"{url}{ROUTE}/{job}/{rank}")
            except httpx.HTTPError as exc:
                log.warning("replication: peer %s unreachable: %s", url, exc)
                continue
            if reply.status_code == 200:
                steps.update(int(s) for s in reply.json().get("steps", []))
                sizes.update(reply.json().get("world_sizes") or {})
        return {"steps": sorted(steps), "world_sizes": sizes}

    def fetch(self, message: dict[str, Any]) -> dict[str, Any]:
        """Pull a replica from the first peer that has it into local memory."""
        job, rank, step = str(message["job"]), int(message["rank"]), int(message["step"])
        for url in self.peer_urls():
            try:
                reply = self.http.get(f"{url}{ROUTE}/{job}/{rank}/{step}")
            except httpx.HTTPError as exc:
                log.warning("replication: peer %s unreachable: %s", url, exc)
                continue
            if reply.status_code != 200:
                continue
            meta = manifest.parse(ShardMeta, reply.headers[META_HEADER], source=url)
            self.fetched.retain(job, rank, keep=1)
            path = self.fetched.put(meta, reply.content, keep=2)
            return {"path": str(path)}
        return {"error": f"no peer holds rank {rank} step {step} of {job}"}

    # --- HTTP routes (the peer side) -----------------------------------------------------
    def router(self) -> APIRouter:
        """Routes another agent calls to store and read replicas."""
        router = APIRouter()

        @router.put(ROUTE + "/{job}/{rank}/{step}")
        async def put_replica(
            job: str, rank: int, step: int, request: Request, keep: int = 2
        ) -> dict[str, Any]:
            meta = manifest.parse(ShardMeta, request.headers.get(META_HEADER, ""), source="request")
            if (meta.job, meta.rank, meta.step) != (job, rank, step):
                raise HTTPException(400, "shard meta does not match the URL")
            try:
                self.replicas.put(meta, await request.body(), keep=max(1, keep))
            except TrainguardError as exc:
                raise HTTPException(400, str(exc)) from exc
            return {"stored": step}

        @router.get(ROUTE + "/{job}/{rank}")
        def list_replicas(job: str, rank: int) -> dict[str, Any]:
            sizes = self.replicas.world_sizes(job, rank)
            return {"steps": sorted(sizes), "world_sizes": {str(s): n for s, n in sizes.items()}}

        @router.get(ROUTE + "/{job}/{rank}/{step}")
        def get_replica(job: str, rank: int, step: int) -> Response:
            try:
                meta, blob = self.replicas.get(job, rank, step)
            except CheckpointNotFound as exc:
                raise HTTPException(404, str(exc)) from exc
            return Response(blob, media_type="application/octet-stream", headers=_meta_header(meta))

        return router


def _meta_header(meta: ShardMeta) -> dict[str, str]:
    return {META_HEADER: json.dumps(manifest.as_dict(meta), separators=(",", ":"))}


def register(context: Any) -> Replication:
    """The extension entry point: wire the handlers and routes into the agent."""
    replication = Replication(context)
    context.add_socket_handler(ipc.CKPT_REPLICATE, replication.replicate)
    context.add_socket_handler(ipc.CKPT_PEER_STEPS, replication.peer_steps)
    context.add_socket_handler(ipc.CKPT_FETCH, replication.fetch)
    context.add_router(replication.router())
    return replication
