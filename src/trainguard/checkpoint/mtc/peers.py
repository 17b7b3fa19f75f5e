"""The other nodes' MTC servers: where replicas go and where a missing shard is looked for.

On HyperPod the library's base URL is a headless Service over one server per node, so a client
may reach any of them; a step must be readable from every server and survive the loss of one
node. Each server therefore

- pushes every shard it accepts from a client to the *next* server in the ring of all servers
  (sorted URLs, ours included), so every shard lives on two nodes;
- answers a read it cannot serve locally (or whose local copy fails its checksum) from the
  first peer that has it;
- answers "latest" from the union of every reachable server's inventory.

Calls between servers carry `PEER_HEADER`, and a server answers them from its own memory only,
so a request never travels further than one hop. A peer that cannot be reached is skipped (it
is the lost node); its absence shows in the ``trainguard_mtc_peer_errors`` metric. The peers
are given (``--peers``) or found by resolving a name (`trainguard.checkpoint.mtc.discovery`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx

from trainguard.checkpoint.mtc import shardmeta
from trainguard.checkpoint.mtc.limits import FieldError
from trainguard.checkpoint.mtc.namespaces import NamespaceConfig
from trainguard.checkpoint.mtc.shardmeta import HEADER
from trainguard.errors import CorruptRecord

log = logging.getLogger("trainguard.checkpoint.mtc")

PEER_HEADER = "X-Trainguard-Mtc-Peer"
"""Marks a request from another server: answer from this node's memory only."""
INVENTORY_ROUTE = "/trainguard/mtc/v1/inventory/{namespace}"
"""A server's committed steps per rank of one namespace (peer-only route)."""
TIMEOUT = httpx.Timeout(120.0, connect=2.0)


def ring_target(me: str | None, peers: Sequence[str]) -> str | None:
    """The server after ``me`` in the sorted ring of all servers (the replica's home)."""
    others = sorted({p.rstrip("/") for p in peers} - {(me or "").rstrip("/")})
    if not others:
        return None
    if me is None:
        return others[0]
    after = [p for p in others if p > me.rstrip("/")]
    return (after or others)[0]


class PeerSet:
    """HTTP calls to the other servers.

    Args:
        me: this server's own URL as peers reach it (to find its place in the ring).
        peers: the other servers' base URLs.
        transport: an httpx transport (tests); the network by default.
    """

    def __init__(
        self, me: str | None, peers: Sequence[str], *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.me = me.rstrip("/") if me else None
        self._ring = self._ring_of(peers)
        self.errors = 0
        self.http = httpx.Client(
            timeout=TIMEOUT, headers={PEER_HEADER: "1"}, transport=transport, trust_env=False
        )

    def _ring_of(self, peers: Sequence[str]) -> tuple[list[str], str | None]:
        urls = sorted({p.rstrip("/") for p in peers} - {self.me})
        return urls, ring_target(self.me, urls)

    @property
    def urls(self) -> list[str]:
        """The other servers' URLs, sorted."""
        return self._ring[0]

    @property
    def target(self) -> str | None:
        """Where this server's replicas go (None: no other server)."""
        return self._ring[1]

    def set_urls(self, peers: Sequence[str]) -> bool:
        """Replace the other servers (peer discovery); True when they changed.

        ``urls`` and ``target`` change together: a request in flight sees the old pair or the
        new one, never a mix.
        """
        ring = self._ring_of(peers)
        changed = ring != self._ring
        self._ring = ring
        return changed

    def _call(self, url: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        try:
            return self.http.request(method, f"{url}{path}", **kwargs)
        except httpx.HTTPError as exc:
            self.errors += 1
            log.warning("mtc: peer %s unreachable (%s %s): %s", url, method, path, exc)
            return None

    def replicate(
        self,
        namespace: str,
        config: NamespaceConfig,
        *,
        rank: int,
        step: int,
        body: bytes,
        header: str,
    ) -> str | None:
        """Store a copy on the ring's next server; return its URL (None: no peer took it)."""
        if self.target is None:
            return None
        path = f"/v1/cp/checkpoints/{namespace}/{rank}/{step}"
        for _ in range(2):
            reply = self._call(self.target, "POST", path, content=body, headers={HEADER: header})
            if reply is None:
                return None
            if reply.status_code == 404:  # the peer has not seen the namespace yet
                self.create_namespace(namespace, config, only=self.target)
                continue
            if reply.status_code != 200:
                self.errors += 1
                log.warning("mtc: peer %s refused a replica: %s", self.target, reply.text[:200])
                return None
            return self.target
        return None

    def fetch(self, namespace: str, rank: int, step: int) -> tuple[bytes, str] | None:
        """``(body, Shard-Meta)`` from the first peer whose copy matches its checksum."""
        for url in self.urls:
            reply = self._call(url, "GET", f"/v1/cp/checkpoints/{namespace}/{rank}/{step}")
            if reply is None or reply.status_code != 200:
                continue
            try:
                shardmeta.parse(reply.headers.get(HEADER)).verify(reply.content)
            except FieldError as exc:
                self.errors += 1
                log.error(
                    "mtc: peer %s sent a damaged copy of rank %s step %s: %s", url, rank, step, exc
                )
                continue
            return reply.content, reply.headers[HEADER]
        return None

    def namespace(self, namespace: str) -> NamespaceConfig | None:
        """The namespace's config as the first peer that knows it has it."""
        for url in self.urls:
            reply = self._call(url, "GET", f"/v1/cp/namespaces/{namespace}")
            if reply is not None and reply.status_code == 200:
                try:
                    return NamespaceConfig.from_json(reply.json())
                except (ValueError, CorruptRecord) as exc:
                    log.warning("mtc: peer %s sent a bad namespace config: %s", url, exc)
        return None

    def inventories(self, namespace: str) -> list[dict[int, list[int]]]:
        """Every reachable peer's committed steps per rank."""
        found = []
        for url in self.urls:
            reply = self._call(url, "GET", INVENTORY_ROUTE.format(namespace=namespace))
            if reply is not None and reply.status_code == 200:
                ranks = reply.json().get("ranks", {})
                found.append({int(r): [int(s) for s in steps] for r, steps in ranks.items()})
        return found

    def create_namespace(
        self, namespace: str, config: NamespaceConfig, *, only: str | None = None
    ) -> None:
        """Create the namespace on the peers (best effort)."""
        params = {"num_ranks": config.num_ranks, "steps_retained": config.steps_retained}
        for url in [only] if only else self.urls:
            self._call(url, "POST", f"/v1/cp/namespaces/{namespace}", params=params)

    def broadcast(self, method: str, path: str) -> int:
        """Send a delete or reset to every peer; return how many answered 200."""
        replies = [self._call(url, method, path) for url in self.urls]
        return sum(1 for r in replies if r is not None and r.status_code == 200)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()
