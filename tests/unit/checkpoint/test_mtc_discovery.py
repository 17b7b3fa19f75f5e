"""Peer discovery of MTC servers: a name's addresses become the replication ring's members.

The resolver is a function the tests script (addresses per lookup, or a failure); DNS itself is
not exercised here — `dns_resolver` is a thin wrapper over ``socket.getaddrinfo``, checked only
for its error on a name refused before any query is sent (a label longer than 63 characters).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from trainguard.checkpoint.mtc.discovery import (
    PeerDiscovery,
    PeerLookupError,
    dns_resolver,
    peer_urls,
)
from trainguard.checkpoint.mtc.peers import PeerSet

ME = "http://10.0.0.2:9200"


class ScriptedResolver:
    """Answers each lookup with the next entry: addresses, or an error to raise."""

    def __init__(self, *answers: Sequence[str] | PeerLookupError) -> None:
        self.answers = list(answers)
        self.names: list[str] = []

    def __call__(self, name: str) -> Sequence[str]:
        self.names.append(name)
        answer = self.answers.pop(0)
        if isinstance(answer, PeerLookupError):
            raise answer
        return answer


def discovery(resolver: ScriptedResolver) -> PeerDiscovery:
    peers = PeerSet(ME, [])
    return PeerDiscovery("mtc.ns.svc", port=9200, peers=peers, resolver=resolver, interval=1.0)


def test_addresses_become_urls_in_address_order_with_ipv6_in_brackets() -> None:
    urls = peer_urls(["10.0.0.10", "10.0.0.9", "fd00::1", "10.0.0.9"], port=9200)
    assert urls == ["http://10.0.0.9:9200", "http://10.0.0.10:9200", "http://[fd00::1]:9200"]
    with pytest.raises(PeerLookupError, match="'node-a' is not an IP address"):
        peer_urls(["node-a"], port=9200)


def test_every_server_derives_the_same_ring_from_the_same_answer() -> None:
    answer = ["10.0.0.3", "10.0.0.1", "10.0.0.2"]
    urls = peer_urls(answer, port=9200)
    targets = {}
    for me in urls:
        peers = PeerSet(me, [])
        peers.set_urls(peer_urls(reversed(answer), port=9200))
        assert me not in peers.urls and len(peers.urls) == 2
        targets[me] = peers.target
    # a ring: every server is some other server's replica target, exactly once
    assert sorted(t for t in targets.values() if t) == sorted(urls)
    assert all(targets[me] != me for me in urls)


def test_a_step_replaces_the_peers_with_what_the_name_resolves_to_now() -> None:
    resolver = ScriptedResolver(
        ["10.0.0.2", "10.0.0.1"],  # this server and one other
        ["10.0.0.1", "10.0.0.2"],  # the same set in another order
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"],  # a node joined
        ["10.0.0.2", "10.0.0.3"],  # node 1 gone
    )
    found = discovery(resolver)
    assert found.step() is True
    assert found.peers.urls == ["http://10.0.0.1:9200"]
    assert found.peers.target == "http://10.0.0.1:9200"
    assert found.step() is False
    assert found.step() is True
    assert found.peers.urls == ["http://10.0.0.1:9200", "http://10.0.0.3:9200"]
    assert found.peers.target == "http://10.0.0.3:9200"  # the next URL after ours
    assert found.step() is True
    assert found.peers.urls == ["http://10.0.0.3:9200"]
    assert resolver.names == ["mtc.ns.svc"] * 4


def test_a_failed_lookup_keeps_the_known_peers_and_an_empty_answer_clears_them() -> None:
    resolver = ScriptedResolver(
        ["10.0.0.1", "10.0.0.2"],
        PeerLookupError("--peers-from-dns: cannot resolve 'mtc.ns.svc'"),
        ["10.0.0.2"],  # only this server is ready
    )
    found = discovery(resolver)
    found.step()
    assert found.step() is False and found.failures == 1
    assert found.peers.urls == ["http://10.0.0.1:9200"]
    assert found.step() is True
    assert found.peers.urls == [] and found.peers.target is None


def test_run_repeats_step_until_stopped() -> None:
    stop = threading.Event()
    answers: list[Sequence[str]] = [["10.0.0.1"], ["10.0.0.3"]]

    def resolve(name: str) -> Sequence[str]:
        if len(answers) == 1:
            stop.set()  # the second lookup is the last one
        return answers.pop(0)

    found = PeerDiscovery("mtc", port=9200, peers=PeerSet(ME, []), resolver=resolve, interval=0.01)
    found.run(stop)
    assert found.peers.urls == ["http://10.0.0.3:9200"] and answers == []


def test_the_dns_resolver_names_the_name_it_could_not_resolve() -> None:
    name = "x" * 64 + ".invalid"
    with pytest.raises(PeerLookupError, match=f"cannot resolve '{name}'"):
        dns_resolver(name)
