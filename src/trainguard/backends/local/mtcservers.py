"""One MTC server per simulated node: HyperPod's in-memory checkpoint service, locally.

On HyperPod a DaemonSet runs the Managed Tiered Checkpointing service on every node behind
the headless Service ``ai-toolkit-gossip-headless.aws-hyperpod``. On the local cluster ``cluster
up`` and ``trainguard run`` ask this module for the same thing by default (``--no-mtc`` opts
out): one ``trainguard checkpoint serve`` process per simulated node (torch-free, so it costs a
fraction of a worker), on 127.0.0.1 with a port of its own, keeping its shards in
that node's shared memory (``<node memory>/mtc``, wiped with the node on a reboot) and each
listing all the others as ``--peers``, so every shard is replicated to one other node.

Each server's URL and pid are recorded in ``$TRAINGUARD_HOME/nodes/<node>/mtc-server.json``;
the backend reads that file to give a pod on the node its server (`pod_environment`). The
library always uses its default base URL, so pods get ``http_proxy`` pointing at the node's
server (which serves that one host name, see `trainguard.checkpoint.mtc.proxyform`) and
``no_proxy`` for 127.0.0.1 and localhost, so our own traffic between local processes never
goes through it; ``TRAINGUARD_MTC_URL`` carries the plain URL for scripts that build their own
``InMemoryClientConfig(base_url=...)``. A manifest's container env overrides all three.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from trainguard import constants as c
from trainguard.backends.local.cluster import LocalCluster
from trainguard.backends.local.daemons import StartedProcess, _start
from trainguard.errors import BackendError
from trainguard.names import safe_join

STATE_FILE = "mtc-server.json"
"""A node's server (url, pid), under ``$TRAINGUARD_HOME/nodes/<node>/``."""
LOG_FILE = "mtc-server.log"
"""A node's server output, beside its state file."""
MEMORY_SUBDIR = "mtc"
"""The servers' shards live in ``<node memory>/mtc``."""
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
"""Seconds the servers get to answer ``/health`` (generous: on a loaded 2-core machine several
starting at once beside a benchmark take seconds each)."""
STOP_TIMEOUT = 10.0
"""Seconds a server gets between SIGTERM and SIGKILL."""
NO_PROXY = "127.0.0.1,localhost"


@dataclass(frozen=True)
class NodeServer:
    """A running node server."""

    node: str
    url: str
    pid: int


def _state_path(home: Path, node: str) -> Path:
    return safe_join(home / "nodes", node, what="node") / STATE_FILE


def running_servers(home: Path) -> dict[str, NodeServer]:
    """The node servers started under ``home`` that still run, by node."""
    found = {}
    for path in sorted((home / "nodes").glob(f"*/{STATE_FILE}")):
        state = json.loads(path.read_text())
        server = NodeServer(node=path.parent.name, url=state["url"], pid=int(state["pid"]))
        if _is_server(server.pid):
            found[server.node] = server
    return found


def start_mtc_servers(home: Path, cluster: LocalCluster, nodes: list[str]) -> list[NodeServer]:
    """Make sure every node in ``nodes`` runs a server that knows all the others.

    Servers already running for exactly these nodes are kept; otherwise all are (re)started
    (shards in shared memory survive a server restart).

    Raises:
        BackendError: a server did not come up (its log tail says why); none is left running.
    """
    alive = running_servers(home)
    if sorted(alive) == sorted(nodes):
        return [alive[n] for n in nodes]
    stop_mtc_servers(home)
    urls = {node: f"http://{HOST}:{_free_port()}" for node in nodes}
    started = {node: _start_one(home, cluster, node, urls) for node in nodes}
    try:
        _wait_healthy(urls, started)
    except BackendError:  # no state file names them yet: nothing else could stop them
        for each in started.values():
            each.process.kill()
            each.process.wait()
        raise
    servers = [NodeServer(node, urls[node], started[node].pid) for node in nodes]
    for server in servers:
        state = {"url": server.url, "pid": server.pid}
        _state_path(home, server.node).write_text(json.dumps(state))
    return servers


def _start_one(
    home: Path, cluster: LocalCluster, node: str, urls: dict[str, str]
) -> StartedProcess:
    port = urls[node].rsplit(":", 1)[1]
    peers = ",".join(url for other, url in urls.items() if other != node)
    command = [
        *(sys.executable, "-m", "trainguard", "checkpoint", "serve", "--host", HOST),
        *("--port", port, "--advertise-url", urls[node]),
        *("--memory-dir", str(cluster.node_memory(node) / MEMORY_SUBDIR)),
    ]
    if peers:
        command += ["--peers", peers]
    return _start(command, log=_state_path(home, node).with_name(LOG_FILE), home=home)


def _wait_healthy(urls: dict[str, str], started: dict[str, StartedProcess]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    waiting = dict(urls)
    with httpx.Client(timeout=2.0, trust_env=False) as http:
        while waiting and time.monotonic() < deadline:
            for node, url in list(waiting.items()):
                if started[node].exit_code() is not None:
                    tail = "\n".join(started[node].log_tail(10))
                    raise BackendError(f"MTC server of {node} exited at start:\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{url}/health").status_code == 200:
                        del waiting[node]
            time.sleep(0.1)
    if waiting:
        raise BackendError(f"MTC servers of {sorted(waiting)} did not answer in {START_TIMEOUT} s")


def stop_mtc_servers(home: Path, *, timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM every node server started under ``home``, all at once, and wait for them
    together (SIGKILL after ``timeout``); returns how many there were."""
    signalled = []
    for path in sorted((home / "nodes").glob(f"*/{STATE_FILE}")):
        pid = int(json.loads(path.read_text())["pid"])
        path.unlink()
        if not _is_server(pid):
            continue
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGTERM)
            signalled.append(proc)
    _, alive = psutil.wait_procs(signalled, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    return len(signalled)


def remove_server_memory(cluster: LocalCluster, nodes: list[str]) -> None:
    """Delete the servers' shards on ``nodes`` (a run that started them ends)."""
    for node in nodes:
        shutil.rmtree(cluster.node_memory(node) / MEMORY_SUBDIR, ignore_errors=True)


def pod_environment(home: Path, node: str) -> dict[str, str]:
    """What a pod on ``node`` needs to reach its node's server (empty when none runs)."""
    server = running_servers(home).get(node)
    if server is None:
        return {}
    given = f"{os.environ.get('no_proxy', '')},{os.environ.get('NO_PROXY', '')}"
    kept = dict.fromkeys(h.strip() for h in given.split(",") if h.strip())
    no_proxy = ",".join([NO_PROXY, *kept])
    return {
        c.ENV_MTC_URL: server.url,
        "http_proxy": server.url,
        "HTTP_PROXY": server.url,
        "no_proxy": no_proxy,
        "NO_PROXY": no_proxy,
    }


def _is_server(pid: int) -> bool:
    try:
        command = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "checkpoint" in command and "serve" in command


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])
