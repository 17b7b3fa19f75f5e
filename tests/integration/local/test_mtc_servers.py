"""The local backend runs one MTC server per simulated node and points the node's pods at it.

Real processes: two nodes get a ``trainguard checkpoint serve`` each, each the other's peer (a
shard put on one is readable on the other after the first is gone), the pod environment names
the node's own server, and stopping leaves no server and no state file behind.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from trainguard import constants as c
from trainguard.backends.local.cluster import LocalCluster, LocalClusterConfig
from trainguard.backends.local.mtcservers import (
    pod_environment,
    running_servers,
    start_mtc_servers,
    stop_mtc_servers,
)
from trainguard.checkpoint.mtc.shardmeta import HEADER, of_body
from trainguard.errors import BackendError
from trainguard.store import SqliteStore

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Path, LocalCluster]]:
    home = tmp_path / "home"
    home.mkdir()
    config = LocalClusterConfig(shm_root=str(tmp_path / "shm"))
    yield home, LocalCluster(SqliteStore(home / "state.db"), home, config)
    stop_mtc_servers(home, timeout=5)


def test_each_node_gets_a_server_that_replicates_to_the_other(
    cluster: tuple[Path, LocalCluster],
) -> None:
    home, local = cluster
    servers = start_mtc_servers(home, local, ["node-0", "node-1"])
    assert [s.node for s in servers] == ["node-0", "node-1"]
    assert start_mtc_servers(home, local, ["node-0", "node-1"]) == servers  # kept, not restarted
    env = pod_environment(home, "node-1")
    assert env[c.ENV_MTC_URL] == env["http_proxy"] == servers[1].url
    assert env["no_proxy"].startswith("127.0.0.1,localhost")
    first, second = servers
    requests.post(f"{first.url}/v1/cp/namespaces/ns?num_ranks=1", timeout=10).raise_for_status()
    body = b"node-0's shard"
    put = requests.post(
        f"{first.url}/v1/cp/checkpoints/ns/0/7",
        data=body,
        headers={HEADER: of_body(body).text},
        timeout=10,
    )
    put.raise_for_status()
    assert (local.node_memory("node-0") / "mtc" / "ns" / "rank_0").is_dir()
    os.kill(first.pid, signal.SIGKILL)
    assert requests.get(f"{second.url}/v1/cp/checkpoints/ns/0/7", timeout=10).content == body
    assert sorted(running_servers(home)) == ["node-1"]
    assert stop_mtc_servers(home, timeout=5) == 1
    assert running_servers(home) == {} and pod_environment(home, "node-0") == {}


def test_a_server_that_fails_to_start_leaves_none_running(
    cluster: tuple[Path, LocalCluster],
) -> None:
    """node-1's memory directory cannot be made (a file is in the way): its server exits at
    start, and node-0's, already started but named in no state file yet, is killed too."""
    home, local = cluster
    local.node_memory("node-1").mkdir(parents=True)
    (local.node_memory("node-1") / "mtc").write_text("in the way")
    with pytest.raises(BackendError, match="MTC server of node-1 exited at start"):
        start_mtc_servers(home, local, ["node-0", "node-1"])
    leftovers = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if str(local.node_memory("node-0")) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == [] and running_servers(home) == {}
