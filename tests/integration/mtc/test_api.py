"""The MTC server driven by the real ``amzn-sagemaker-checkpointing`` client (no mocks).

Each test is one call pattern the library's writer or reader makes, checked for what the
library then sees: the namespace shape, a shard's bytes and checksum header, the latest
complete steps, 404 as "absent", and an error (never a crash) for bad input, a damaged shard
and a full node.
"""

from __future__ import annotations

import pytest
import requests
from amzn_sagemaker_checkpointing.storage.clients.inmemory.exceptions import (
    InMemoryClientError,
    InMemoryRequestError,
    InMemoryServerError,
)

from tests.integration.mtc.conftest import ClientFactory, ServerFactory
from trainguard.checkpoint.mtc.proxyform import HYPERPOD_DEFAULT_URL
from trainguard.checkpoint.mtc.server import MtcServer
from trainguard.checkpoint.mtc.shardmeta import of_body
from trainguard.checkpoint.mtc.shards import HEADER_PREFIX


def stored_bytes(shard: bytes) -> int:
    """What the memory budget counts for a shard: its bytes and its Shard-Meta header."""
    return HEADER_PREFIX + len(of_body(shard).text) + len(shard)


def test_namespace_is_created_read_and_deleted_as_the_library_expects(
    server: MtcServer, client_for: ClientFactory
) -> None:
    client = client_for(server, "job-a", steps_retained=2)
    assert client.get_namespace_config() == {}
    assert client.get_or_create_namespace() == {"num_ranks": 3, "steps_to_retain_per_rank": 2}
    assert client.get_or_create_namespace() == {"num_ranks": 3, "steps_to_retain_per_rank": 2}
    client.delete_namespace()
    assert client.get_namespace_config() == {}
    metrics = requests.get(f"{server.url}/metrics", timeout=5).text
    assert 'trainguard_mtc_requests_total{code="404",operation="get_namespace"} 3.0' in metrics
    assert 'trainguard_mtc_requests_total{code="200",operation="create_namespace"} 1.0' in metrics


def test_a_shard_comes_back_with_its_bytes_and_checksum_header(
    server: MtcServer, client_for: ClientFactory
) -> None:
    client = client_for(server, "job-b")
    client.get_or_create_namespace()
    client.put_checkpoint(step=10, data=b"rank one bytes", rank=1)
    client.put_checkpoint(step=10, data=b"metadata", metadata_index=0)
    assert client.get_checkpoint(step=10, rank=1) == b"rank one bytes"
    assert client.get_checkpoint(step=10, metadata_index=0) == b"metadata"
    assert client.get_checkpoint(step=11, rank=1) is None
    client.delete_checkpoint(step=10, rank=1)
    assert client.get_checkpoint(step=10, rank=1) is None


def test_latest_offers_only_steps_every_rank_holds(
    server: MtcServer, client_for: ClientFactory
) -> None:
    client = client_for(server, "job-c")  # world 2 + 1 metadata rank
    client.get_or_create_namespace()
    for step in (100, 200):
        for rank in (0, 2):
            client.put_checkpoint(step=step, data=f"{rank}@{step}".encode(), rank=rank)
    client.put_checkpoint(step=100, data=b"1@100", rank=1)
    assert client.get_latest_checkpoints() == [100]
    client.put_checkpoint(step=200, data=b"1@200", rank=1)
    assert client.get_latest_checkpoints() == [200, 100]
    assert client.get_latest_checkpoints(limit=1) == [200]


def test_retention_keeps_the_newest_steps_per_rank(
    server: MtcServer, client_for: ClientFactory
) -> None:
    client = client_for(server, "job-d", world_size="1", steps_retained=2)
    client.get_or_create_namespace()
    for step in (1, 2, 3, 4):
        for rank in (0, 1):
            client.put_checkpoint(step=step, data=bytes([step]) * 64, rank=rank)
    assert client.get_latest_checkpoints() == [4, 3]
    assert client.get_checkpoint(step=2, rank=0) is None
    assert client.get_checkpoint(step=3, rank=0) == bytes([3]) * 64
    with pytest.raises(InMemoryClientError, match=r"step: 2 is older than the 2 step\(s\)"):
        client.put_checkpoint(step=2, data=b"late", rank=0)  # would be evicted at once: a 409
    client.put_checkpoint(step=3, data=b"again", rank=0)  # a kept step may be written again
    assert client.get_checkpoint(step=3, rank=0) == b"again"


def test_a_shard_damaged_in_shared_memory_is_refused_by_its_checksum(
    server: MtcServer, client_for: ClientFactory
) -> None:
    client = client_for(server, "job-e")
    client.get_or_create_namespace()
    client.put_checkpoint(step=5, data=b"\x00" * 4096, rank=0)
    (slot,) = (server.config.memory_dir / "job-e" / "rank_0").glob("slot_*.bin")
    with open(slot, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff")
    # a 500: urllib3's Retry(total=0) turns a retryable status into "retries exhausted"
    with pytest.raises(InMemoryRequestError):
        client.get_checkpoint(step=5, rank=0)
    reply = requests.get(f"{server.url}/v1/cp/checkpoints/job-e/0/5", timeout=5)
    assert reply.status_code == 500 and "checksum" in reply.text
    metrics = requests.get(f"{server.url}/metrics", timeout=5).text
    assert "trainguard_mtc_corrupt_total 2.0" in metrics


def test_a_full_node_answers_507_and_retention_still_makes_room(
    start_server: ServerFactory, client_for: ClientFactory
) -> None:
    server = start_server(memory_bytes=1000)
    client = client_for(server, "job-f", world_size="1", steps_retained=1)
    client.get_or_create_namespace()
    client.put_checkpoint(step=1, data=b"a" * 600, rank=0)
    with pytest.raises(InMemoryServerError, match="memory budget"):
        client.put_checkpoint(step=1, data=b"b" * 600, rank=1)
    client.put_checkpoint(step=2, data=b"c" * 600, rank=0)  # replaces step 1: no growth
    assert client.get_checkpoint(step=2, rank=0) == b"c" * 600
    metrics = requests.get(f"{server.url}/metrics", timeout=5).text
    assert "trainguard_mtc_rejected_full_total 1.0" in metrics
    stored = stored_bytes(b"c" * 600)
    assert f"trainguard_mtc_memory_used_bytes {stored:.1f}" in metrics


def test_bad_input_gets_a_4xx_naming_the_field(
    start_server: ServerFactory, client_for: ClientFactory
) -> None:
    server = start_server(max_shard_bytes=1024, max_ranks=8)
    client = client_for(server, "job-g")
    client.get_or_create_namespace()
    with pytest.raises(InMemoryClientError, match="rank: 5 is not below"):
        client.put_checkpoint(step=1, data=b"x", rank=5)
    with pytest.raises(InMemoryClientError, match="over 1024 bytes"):
        client.put_checkpoint(step=1, data=b"x" * 2048, rank=0)
    url = f"{server.url}/v1/cp"
    cases = {
        ("POST", f"{url}/namespaces/job-h?num_ranks=9"): "num_ranks: 9 is not between 1 and 8",
        ("POST", f"{url}/namespaces/job-h?num_ranks=2&steps_retained=0"): "steps_retained",
        ("POST", f"{url}/namespaces/job-g?num_ranks=4"): "exists with num_ranks=3",
        ("GET", f"{url}/namespaces/bad.name"): "namespace:",
        ("GET", f"{url}/checkpoints/job-g/0/-1"): "step: -1 is not between",
        ("GET", f"{url}/checkpoints/job-g/latest?limit=0"): "limit: 0",
        ("POST", f"{url}/checkpoints/job-g/0/1"): "Shard-Meta: header is required",
    }
    for (method, target), message in cases.items():
        reply = requests.request(method, target, timeout=5)
        assert 400 <= reply.status_code < 500 and message in reply.text, (target, reply.text)


def test_the_library_default_url_reaches_the_server_through_http_proxy(
    server: MtcServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amzn_sagemaker_checkpointing.storage.clients.inmemory.inmemory_client import (
        InMemoryCheckpointClient,
    )

    monkeypatch.setenv("http_proxy", server.url)
    monkeypatch.setenv("no_proxy", "")
    client = InMemoryCheckpointClient("job-i", rank="0", world_size="1")  # default config
    assert client.config.base_url == HYPERPOD_DEFAULT_URL
    client.get_or_create_namespace()
    client.put_checkpoint(step=3, data=b"via proxy", rank=0)
    assert client.get_checkpoint(step=3, rank=0) == b"via proxy"
    client.close()
    other = requests.get("http://example.com/v1/cp/cluster/reset", timeout=5)
    assert other.status_code == 421


def test_reset_clears_every_namespace(server: MtcServer, client_for: ClientFactory) -> None:
    client = client_for(server, "job-j")
    client.get_or_create_namespace()
    client.put_checkpoint(step=1, data=b"x", rank=0)
    client.reset_cluster()
    assert client.get_namespace_config() == {}


def test_a_server_answers_for_shards_only_its_peer_holds(
    start_server: ServerFactory, client_for: ClientFactory
) -> None:
    holder = start_server("holder")
    front = start_server("front", peers=(holder.url,))
    writer = client_for(holder, "job-k", world_size="1")
    writer.get_or_create_namespace()
    for rank in (0, 1):
        writer.put_checkpoint(step=8, data=f"shard {rank}".encode(), rank=rank)
    reader = client_for(front, "job-k", world_size="1")
    assert reader.get_namespace_config() == {"num_ranks": 2, "steps_to_retain_per_rank": 3}
    assert reader.get_latest_checkpoints() == [8]
    assert reader.get_checkpoint(step=8, rank=1) == b"shard 1"
    assert not (front.config.memory_dir / "job-k" / "rank_1").exists()  # read through, not copied


def test_a_restarted_server_still_serves_and_counts_what_it_held(
    start_server: ServerFactory, client_for: ClientFactory
) -> None:
    first = start_server("node", memory_bytes=1000)
    client = client_for(first, "job-l", world_size="1")
    client.get_or_create_namespace()
    client.put_checkpoint(step=4, data=b"k" * 600, rank=0)
    first.stop()
    again = start_server("node", memory_bytes=1000)  # same shared-memory directory
    client = client_for(again, "job-l", world_size="1")
    assert client.get_namespace_config() == {"num_ranks": 2, "steps_to_retain_per_rank": 3}
    assert client.get_checkpoint(step=4, rank=0) == b"k" * 600
    with pytest.raises(
        InMemoryServerError, match=f"{stored_bytes(b'k' * 600)} of 1000 bytes in use"
    ):
        client.put_checkpoint(step=4, data=b"m" * 600, rank=1)


def test_a_damaged_local_shard_is_served_from_the_peer_s_replica(
    start_server: ServerFactory, client_for: ClientFactory
) -> None:
    replica_holder = start_server("replicas")
    front = start_server("front", peers=(replica_holder.url,))
    client = client_for(front, "job-m", world_size="1")
    client.get_or_create_namespace()
    client.put_checkpoint(step=2, data=b"\x01" * 2048, rank=1)  # replicated to replica_holder
    (slot,) = (front.config.memory_dir / "job-m" / "rank_1").glob("slot_*.bin")
    with open(slot, "r+b") as handle:
        handle.seek(200)
        handle.write(b"\x00")
    assert client.get_checkpoint(step=2, rank=1) == b"\x01" * 2048
    metrics = requests.get(f"{front.url}/metrics", timeout=5).text
    assert "trainguard_mtc_corrupt_total 1.0" in metrics
    assert "trainguard_mtc_peer_reads_total 1.0" in metrics
    assert "trainguard_mtc_replicated_total 1.0" in metrics
