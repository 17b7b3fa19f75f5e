"""Servers that find each other by a name: a shard put on one is replicated to the other.

Two servers in threads on 127.0.0.2 and 127.0.0.3, the same port (as a DaemonSet's pods on
their nodes' addresses), each with ``peers_from_dns`` and a resolver function answering both
addresses, as the chart's headless Service would. DNS itself is not exercised here (see
``tests/unit/checkpoint/test_mtc_discovery.py``); what is checked is that the resolved peers
reach the running servers' replication and reads.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import requests

from tests.integration.mtc.conftest import ClientFactory
from tests.ports import free_port
from trainguard.checkpoint.mtc.server import MtcServer, MtcServerConfig

ADDRESSES = ("127.0.0.2", "127.0.0.3")


def resolve(name: str) -> Sequence[str]:
    assert name == "ai-toolkit-gossip-headless.aws-hyperpod.svc.cluster.local"
    return ADDRESSES


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[MtcServer]]:
    port = free_port()
    started = []
    for address in ADDRESSES:
        config = MtcServerConfig(
            memory_dir=tmp_path / address,
            host=address,
            port=port,
            peers_from_dns="ai-toolkit-gossip-headless.aws-hyperpod.svc.cluster.local",
            resolver=resolve,
        )
        started.append(MtcServer(config).start())
    yield started
    for server in started:
        server.stop()


def wait_for_peers(server: MtcServer, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(server.service.peers.urls) < count:
        assert time.monotonic() < deadline, "discovery never set the peers"
        time.sleep(0.01)


def test_a_shard_put_on_one_server_is_read_from_the_other_after_it_stops(
    servers: list[MtcServer], client_for: ClientFactory
) -> None:
    first, second = servers
    for server in servers:
        wait_for_peers(server, 1)
    assert first.service.peers.urls == [second.url] and first.service.peers.target == second.url
    writer = client_for(first, "job-d", world_size="1")
    writer.get_or_create_namespace()
    writer.put_checkpoint(step=3, data=b"a shard", rank=0)  # replicated to the resolved peer
    first.stop()
    assert client_for(second, "job-d", world_size="1").get_checkpoint(step=3, rank=0) == b"a shard"
    metrics = requests.get(f"{second.url}/metrics", timeout=10).text
    assert "trainguard_mtc_peers 1.0" in metrics
