"""``trainguard checkpoint``: the checkpoint services a node runs.

``trainguard checkpoint serve`` runs the HyperPod Managed Tiered Checkpointing in-memory API
(`trainguard.checkpoint.mtc`) for one node: unmodified scripts using
``amzn-sagemaker-checkpointing`` save into and restore from this node's memory tier, with a
replica on the next server of ``--peers``. ``trainguard cluster up`` and ``trainguard run``
start one per simulated node; on Kubernetes the chart runs it as a DaemonSet behind a headless
Service named as HyperPod's, each server finding the others with ``--peers-from-dns``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from trainguard import constants as c
from trainguard.backends.local.cluster import LocalCluster
from trainguard.backends.local.mtcservers import NodeServer, start_mtc_servers
from trainguard.checkpoint.mtc.discovery import DEFAULT_INTERVAL_S, PeerLookupError, peer_urls
from trainguard.checkpoint.mtc.limits import MtcLimits
from trainguard.checkpoint.mtc.server import (
    DEFAULT_PORT,
    MtcServer,
    MtcServerConfig,
    default_memory_dir,
)
from trainguard.cli import console
from trainguard.cli.console import handle_errors
from trainguard.errors import BackendError, UsageError

checkpoint_app = typer.Typer(help="Checkpoint services of a node.", no_args_is_help=True)

MtcServersFlag = Annotated[
    bool | None,
    typer.Option(
        "--mtc/--no-mtc",
        envvar=c.ENV_MTC_SERVERS,
        help="Run a HyperPod MTC in-memory checkpoint server per simulated node (the default: "
        "a server that fails to start only warns; with --mtc it is an error). --no-mtc: none, "
        "and the pods get no proxy settings.",
    ),
]
"""``run``'s and ``cluster up``'s flag for the node servers (docs/cli.md): None when not given."""


def start_node_servers(
    home: Path, cluster: LocalCluster, nodes: list[str], *, flag: bool | None
) -> list[NodeServer]:
    """An MTC server per node unless ``--no-mtc``.

    Servers nobody asked for must not cost a job its run: by default a failure to start them
    is a warning and the job runs without them; only an explicit ``--mtc`` makes it an error.
    """
    if flag is False:
        return []
    try:
        return start_mtc_servers(home, cluster, nodes)
    except BackendError as exc:
        if flag:
            raise
        console.warn(f"{exc}\ncontinuing without MTC servers (--mtc: fail instead)")
        return []


GIB = 1 << 30


def serve(
    *,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (HyperPod's is 9200).")] = DEFAULT_PORT,
    peers: Annotated[
        list[str] | None,
        typer.Option("--peers", help="Another node's server URL (repeatable, or comma-separated)."),
    ] = None,
    peers_from_dns: Annotated[
        str | None,
        typer.Option(
            "--peers-from-dns",
            help="Find the peers by resolving this name (a headless Service's) every "
            "--peers-refresh-seconds; --peers, when given, wins. Needs --advertise-url.",
        ),
    ] = None,
    peers_refresh_seconds: Annotated[
        float, typer.Option(min=1.0, help="Seconds between two lookups of --peers-from-dns.")
    ] = DEFAULT_INTERVAL_S,
    advertise_url: Annotated[
        str | None, typer.Option(help="This server's URL as its peers reach it.")
    ] = None,
    memory_dir: Annotated[
        Path | None,
        typer.Option(help="Shared-memory directory (default $TRAINGUARD_SHM_DIR/mtc)."),
    ] = None,
    memory_gib: Annotated[
        float, typer.Option(help="Committed shard memory this node may hold, in GiB.")
    ] = 64.0,
    max_shard_gib: Annotated[float, typer.Option(help="Largest shard accepted, in GiB.")] = 8.0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the in-memory checkpoint API of HyperPod's Managed Tiered Checkpointing."""
    urls = [url.strip() for entry in peers or [] for url in entry.split(",") if url.strip()]
    for url in [*urls, *([advertise_url] if advertise_url else [])]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"--peers/--advertise-url: {url!r} is not an http(s)://host:port URL")
    if peers_from_dns:
        _check_advertised(advertise_url, port=port)
    limits = MtcLimits(memory_bytes=int(memory_gib * GIB), max_shard_bytes=int(max_shard_gib * GIB))
    config = MtcServerConfig(
        memory_dir=memory_dir or default_memory_dir(port),
        host=host,
        port=port,
        peers=urls,
        advertise_url=advertise_url,
        limits=limits,
        log_level=log_level,
        peers_from_dns=peers_from_dns or None,
        peers_refresh_s=peers_refresh_seconds,
    )
    logging.basicConfig(  # its own lines (peers found, peers unreachable); uvicorn's are apart
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    server = MtcServer(config)
    typer.echo(f"trainguard MTC server on {server.url} (memory {config.memory_dir})", err=True)
    server.serve()


def _check_advertised(advertise_url: str | None, *, port: int) -> None:
    """With ``--peers-from-dns`` a server finds itself among the resolved servers by its
    advertised URL, which must therefore be the URL discovery makes of its IP address."""
    if advertise_url is None:
        raise UsageError(
            "--advertise-url: required with --peers-from-dns (the server must tell its own "
            "address among those the name resolves to)"
        )
    try:
        expected = peer_urls([urlsplit(advertise_url).hostname or ""], port=port)[0]
    except PeerLookupError:
        expected = None
    if advertise_url.rstrip("/") != expected:
        raise UsageError(
            f"--advertise-url: {advertise_url!r} must be http://<this server's IP>:{port} with "
            "--peers-from-dns (the URL discovery makes of the address the name resolves to)"
        )


checkpoint_app.command("serve")(handle_errors(serve))
