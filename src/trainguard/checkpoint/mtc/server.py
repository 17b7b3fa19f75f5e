"""Wire one node's MTC server together and run it (``trainguard checkpoint serve``).

`MtcServer` builds the registry, shard store, peer set and app over one shared-memory
directory and serves them with uvicorn behind `trainguard.httpguard`'s limits — in a thread
(`start`/`stop`, for tests and embedding) or in the foreground (`serve`, for the CLI). With
``peers_from_dns`` a daemon thread keeps the peer set equal to what that name resolves to
(`trainguard.checkpoint.mtc.discovery`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from trainguard.checkpoint.mtc.discovery import (
    DEFAULT_INTERVAL_S,
    PeerDiscovery,
    Resolver,
    dns_resolver,
)
from trainguard.checkpoint.mtc.limits import MtcLimits
from trainguard.checkpoint.mtc.metrics import MtcMetrics
from trainguard.checkpoint.mtc.namespaces import NamespaceRegistry
from trainguard.checkpoint.mtc.peers import PeerSet
from trainguard.checkpoint.mtc.routes import build_app
from trainguard.checkpoint.mtc.service import MtcService
from trainguard.checkpoint.mtc.shards import ShardStore
from trainguard.errors import InfrastructureError
from trainguard.httpguard import QuietServer, server_config
from trainguard.permissions import private_dir

log = logging.getLogger("trainguard.checkpoint.mtc")

DEFAULT_PORT = 9200
"""HyperPod's port for the in-memory checkpoint service."""
MAX_CONNECTIONS = 1024
"""Connections one server holds at most (every rank of every job on the node, plus peers)."""


def default_memory_dir(port: int) -> Path:
    """``$TRAINGUARD_SHM_DIR/mtc``, else ``/dev/shm/trainguard-mtc-<port>``."""
    shm = os.environ.get("TRAINGUARD_SHM_DIR")
    return Path(shm) / "mtc" if shm else Path("/dev/shm") / f"trainguard-mtc-{port}"


@dataclass
class MtcServerConfig:
    """How to run one server.

    Attributes:
        memory_dir: node-local shared-memory directory for the shards.
        host: bind address.
        port: bind port (0: any free port).
        peers: the other servers' base URLs (given: ``peers_from_dns`` is not used).
        advertise_url: this server's URL as the peers reach it (default from host and port).
        limits: input and memory limits.
        log_level: uvicorn's log level.
        peers_from_dns: a name whose addresses are the servers (the headless Service's).
        peers_refresh_s: seconds between two lookups of ``peers_from_dns``.
        resolver: name to addresses for ``peers_from_dns`` (DNS; tests pass a function).
    """

    memory_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    peers: Sequence[str] = ()
    advertise_url: str | None = None
    limits: MtcLimits = field(default_factory=MtcLimits)
    log_level: str = "warning"
    peers_from_dns: str | None = None
    peers_refresh_s: float = DEFAULT_INTERVAL_S
    resolver: Resolver = dns_resolver


class MtcServer:
    """One node's MTC server."""

    def __init__(self, config: MtcServerConfig) -> None:
        self.config = config
        private_dir(config.memory_dir)
        me = config.advertise_url or f"http://{config.host}:{config.port}"
        self.service = MtcService(
            registry=NamespaceRegistry(config.memory_dir),
            store=ShardStore(config.memory_dir, memory_bytes=config.limits.memory_bytes),
            peers=PeerSet(me if config.port else None, config.peers),
            limits=config.limits,
            metrics=MtcMetrics(),
        )
        for name, namespace in self.service.registry.items():  # left by a previous server
            self.service.store.adopt(name, namespace)
        uv_config = server_config(
            build_app(self.service),
            host=config.host,
            port=config.port,
            max_connections=MAX_CONNECTIONS,
            log_level=config.log_level,
            access_log=config.log_level == "debug",
        )
        self._server = QuietServer(uv_config)
        self._thread: threading.Thread | None = None
        self.port = config.port
        self.discovery = self._discovery()
        self._discovering = threading.Event()

    def _discovery(self) -> PeerDiscovery | None:
        config = self.config
        if config.peers_from_dns is None:
            return None
        if config.peers:
            log.info("mtc: --peers given, %s is not resolved", config.peers_from_dns)
            return None
        return PeerDiscovery(
            config.peers_from_dns,
            port=config.port,
            peers=self.service.peers,
            resolver=config.resolver,
            interval=config.peers_refresh_s,
        )

    def _start_discovery(self) -> None:
        if self.discovery is None:
            return
        self._discovering.clear()
        thread = threading.Thread(
            target=self.discovery.run, args=(self._discovering,), name="mtc-peers", daemon=True
        )
        thread.start()

    @property
    def url(self) -> str:
        """The base URL a client gives ``InMemoryClientConfig(base_url=...)``."""
        return f"http://{self.config.host}:{self.port}"

    def serve(self) -> None:
        """Serve in the foreground until SIGINT/SIGTERM."""
        self._start_discovery()
        try:
            self._server.run()
        finally:
            self.close()

    def start(self, timeout: float = 15.0) -> MtcServer:
        """Serve from a daemon thread; return once bound (``port`` is then the real one).

        Raises:
            InfrastructureError: the server did not come up (port in use, bad host).
        """
        self._start_discovery()
        self._thread = threading.Thread(target=self._server.run, name="mtc-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise InfrastructureError(f"MTC server did not start on {self.url}")
            time.sleep(0.01)
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and unmap the shards (they stay in shared memory)."""
        self._server.request_exit()
        if self._thread is not None:
            self._thread.join(timeout)
        self.close()

    def close(self) -> None:
        """Stop peer discovery; release the store's mappings and the peers' connections."""
        self._discovering.set()
        self.service.store.close()
        self.service.peers.close()

    def __enter__(self) -> MtcServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
