"""MTC servers for tests (in a thread, on 127.0.0.1, port 0) and the real library's client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from amzn_sagemaker_checkpointing.config.in_memory_client import InMemoryClientConfig
from amzn_sagemaker_checkpointing.storage.clients.inmemory.inmemory_client import (
    InMemoryCheckpointClient,
)

from trainguard.checkpoint.mtc.limits import MtcLimits
from trainguard.checkpoint.mtc.server import MtcServer, MtcServerConfig

ServerFactory = Callable[..., MtcServer]
ClientFactory = Callable[..., InMemoryCheckpointClient]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers on demand (each with its own memory directory); stop them all after."""
    started: list[MtcServer] = []

    def start(name: str = "node", peers: tuple[str, ...] = (), **limits: int) -> MtcServer:
        config = MtcServerConfig(
            memory_dir=tmp_path / name, port=0, peers=peers, limits=MtcLimits(**limits)
        )
        started.append(MtcServer(config).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: ServerFactory) -> MtcServer:
    return start_server()


@pytest.fixture
def client_for() -> Iterator[ClientFactory]:
    """The library's own client, pointed at a server the way a user's script would."""
    made: list[InMemoryCheckpointClient] = []

    def make(server: MtcServer, namespace: str, **options: object) -> InMemoryCheckpointClient:
        options.setdefault("rank", "0")
        options.setdefault("world_size", "2")
        config = InMemoryClientConfig(base_url=server.url, request_timeout=10.0)
        made.append(InMemoryCheckpointClient(namespace, config=config, **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for client in made:
        client.close()
