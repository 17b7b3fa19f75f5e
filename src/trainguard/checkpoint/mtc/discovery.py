"""Find the other MTC servers of a cluster by resolving the headless Service's name.

On Kubernetes the chart runs one server per node (a DaemonSet) behind the headless Service that
HyperPod's library already resolves (``ai-toolkit-gossip-headless.aws-hyperpod``). A headless
Service's DNS name answers with the addresses of its *ready* pods, so the name that leads a
client to the servers also lists the servers a shard can be replicated to: with
``--peers-from-dns NAME`` each server resolves it, turns the addresses into URLs on its own port
and hands them to its `PeerSet`, whose `ring_target` orders every server's URL the same way — so
all servers agree on the ring without asking the API server (the pod holds no token).

Nodes come and go (a replaced node, a DaemonSet rollout), so the name is resolved again every
``interval`` seconds. A failed lookup keeps the peers last known (a DNS hiccup must not stop
replication); an answer, even one without other servers, replaces them. ``--peers`` stays the
explicit override: given, nothing is resolved. The resolver is a plain function so tests (and
other discovery schemes) can replace DNS.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Sequence

from trainguard.checkpoint.mtc.peers import PeerSet
from trainguard.errors import InfrastructureError

log = logging.getLogger("trainguard.checkpoint.mtc")

DEFAULT_INTERVAL_S = 30.0
"""Seconds between two lookups: a new node's server gets replicas within about this long."""

Resolver = Callable[[str], Sequence[str]]
"""A name to its addresses; raises `PeerLookupError` when it cannot tell."""


class PeerLookupError(InfrastructureError):
    """The peers' name could not be resolved (the peers known so far are kept)."""

    temporary = True


def dns_resolver(name: str) -> list[str]:
    """The IPv4 and IPv6 addresses the system resolver gives for ``name``.

    Raises:
        PeerLookupError: the name does not resolve (no ready server yet) or DNS failed.
    """
    try:
        found = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise PeerLookupError(f"--peers-from-dns: cannot resolve {name!r}: {exc}") from exc
    return sorted({str(entry[4][0]) for entry in found})


def peer_urls(addresses: Iterable[str], *, port: int, scheme: str = "http") -> list[str]:
    """Server URLs for ``addresses`` on ``port``, in address order (IPv6 in brackets).

    Raises:
        PeerLookupError: an address is not an IP address.
    """
    parsed = []
    for address in set(addresses):
        try:
            parsed.append(ipaddress.ip_address(address))
        except ValueError as exc:
            raise PeerLookupError(f"--peers-from-dns: {address!r} is not an IP address") from exc
    parsed.sort(key=lambda ip: (ip.version, int(ip)))
    return [f"{scheme}://{ip if ip.version == 4 else f'[{ip}]'}:{port}" for ip in parsed]


class PeerDiscovery:
    """Keeps a `PeerSet` equal to the servers a name resolves to.

    Args:
        name: the headless Service's DNS name.
        port: the servers' port (every server of a DaemonSet listens on the same one).
        peers: the peer set to update.
        resolver: name to addresses (`dns_resolver` by default).
        interval: seconds between lookups in `run`.
    """

    def __init__(
        self,
        name: str,
        *,
        port: int,
        peers: PeerSet,
        resolver: Resolver = dns_resolver,
        interval: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.name, self.port, self.peers = name, port, peers
        self.resolver, self.interval = resolver, interval
        self.failures = 0

    def step(self) -> bool:
        """Resolve once and update the peers; True when they changed."""
        try:
            urls = peer_urls(self.resolver(self.name), port=self.port)
        except PeerLookupError as exc:
            self.failures += 1
            log.warning("mtc: %s; keeping %d known peer(s)", exc, len(self.peers.urls))
            return False
        changed = self.peers.set_urls(urls)
        if changed:
            log.info(
                "mtc: peers from %s: %s (replicas to %s)",
                self.name,
                ", ".join(self.peers.urls) or "none",
                self.peers.target,
            )
        return changed

    def run(self, stop: threading.Event) -> None:
        """`step` every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.step()
            stop.wait(self.interval)
