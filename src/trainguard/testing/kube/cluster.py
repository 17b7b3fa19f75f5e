"""`TestCluster`: a fake Kubernetes cluster in this process, for tests and for humans.

``with TestCluster(nodes=3, workdir=tmp) as cluster:`` starts the fake API server
(`KubeApiServer`), the scheduler, the node lifecycle controller and one kubelet per node
(``node-0``...), and writes a kubeconfig (``cluster.kubeconfig``) that the real ``kubectl`` and
lightkube use. Node faults are methods (`make_not_ready`, `make_ready`, `remove_node`,
`add_node`). `close` stops everything and SIGKILLs every container process still running, so
no test leaves a process behind.

Containers run with the host's ``PATH``, ``PYTHONPATH``, ``HOME`` and locale standing in for
the image's environment (``image_env`` replaces that set), then their own ``env``.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from trainguard.testing.kube.containerlogs import LogRegistry
from trainguard.testing.kube.informer import Informer
from trainguard.testing.kube.kubelet import Kubelet
from trainguard.testing.kube.nodelifecycle import NodeLifecycleController
from trainguard.testing.kube.podips import NetworkClaim
from trainguard.testing.kube.processes import host_image_env
from trainguard.testing.kube.restclient import KubeClient, nodes_path
from trainguard.testing.kube.scheduler import Scheduler
from trainguard.testing.kube.server import KubeApiServer

JOIN_SECONDS = 10.0


class _Loop:
    """A component's thread running ``run(stop)`` until `stop`."""

    def __init__(
        self, name: str, run: Callable[[threading.Event], None], wake: threading.Event
    ) -> None:
        self.stop_event, self._wake = threading.Event(), wake
        self._thread = threading.Thread(target=run, args=(self.stop_event,), name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self._wake.set()
        self._thread.join(JOIN_SECONDS)


class TestCluster:
    """An API server, a scheduler and N process kubelets; a context manager."""

    __test__ = False  # a fixture, not a test class

    def __init__(
        self,
        *,
        nodes: int = 3,
        workdir: Path | str | None = None,
        port: int = 0,
        node_labels: Mapping[str, Mapping[str, str]] | None = None,
        image_env: Mapping[str, str] | None = None,
        heartbeat_seconds: float = 5.0,
    ) -> None:
        if nodes < 0:
            raise ValueError(f"nodes: {nodes} is negative")
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="trainguard-kube-"))
        self._initial_nodes = nodes
        self._node_labels = dict(node_labels or {})
        self._image_env = dict(image_env if image_env is not None else host_image_env())
        self._heartbeat_seconds = heartbeat_seconds
        self.server = KubeApiServer(port=port)
        self.logs = LogRegistry()
        self.kubelets: dict[str, Kubelet] = {}
        self._loops: dict[str, _Loop] = {}
        self._clients: list[KubeClient] = []
        self._informers: list[Informer] = []
        self._next_index = 0
        self._started = False

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return str(self.server.url)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def network(self) -> int:
        """The network number N this cluster claimed: hosts ``127.0.N.*``, pods ``127.N.*.*``."""
        return self._network.number

    def start(self) -> TestCluster:
        """Serve, wait for the caches, register the nodes; returns self."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._network = NetworkClaim.claim()
        try:
            self.server.start()
        except BaseException:
            self._network.release()
            raise
        self._started = True
        try:
            self._start_components()
        except BaseException:
            self.close()
            raise
        return self

    def _start_components(self) -> None:
        self.server.register_log_source(self.logs.read)
        self.server.write_kubeconfig(self.kubeconfig, namespace="default")
        self.pods = Informer(self._client(), "/api/v1/pods", self._pods_changed)
        self.nodes = Informer(self._client(), nodes_path(), self._nodes_changed)
        self.scheduler = Scheduler(self._client(), self.pods, self.nodes)
        self.lifecycle = NodeLifecycleController(self._client(), self.pods, self.nodes)
        for informer in (self.pods, self.nodes):
            self._informers.append(informer)
            informer.start()
            informer.synced.wait(JOIN_SECONDS)
        self._loops["scheduler"] = _Loop("scheduler", self.scheduler.run, self.scheduler.wake)
        self._loops["lifecycle"] = _Loop("node-lifecycle", self.lifecycle.run, self.lifecycle.wake)
        for _ in range(self._initial_nodes):
            self.add_node(f"node-{self._next_index}")

    def close(self) -> None:
        """Stop every component, kill every container process, stop the server."""
        if not self._started:
            return
        self._started = False
        for name in list(self.kubelets):
            self._stop_kubelet(name)
        for loop in self._loops.values():
            loop.stop()
        self._loops.clear()
        self.logs.close()
        for informer in self._informers:
            informer.stop()
        for client in self._clients:
            client.close()
        self.server.stop()
        self._network.release()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> TestCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- nodes -----------------------------------------------------------------------------
    def add_node(self, name: str, *, labels: Mapping[str, str] | None = None) -> Kubelet:
        """Start a kubelet for a new node ``name`` and register its Node."""
        if name in self.kubelets:
            raise ValueError(f"node {name!r} exists already")
        kubelet = Kubelet(
            name=name,
            index=self._next_index,
            client=self._client(),
            pods=self.pods,
            logs=self.logs,
            root=self.workdir / "nodes",
            image_env=self._image_env,
            labels={**self._node_labels.get(name, {}), **(labels or {})},
            heartbeat_seconds=self._heartbeat_seconds,
            network=self._network.number,
        )
        self._next_index += 1
        kubelet.register()
        self.kubelets[name] = kubelet
        self._loops[name] = _Loop(f"kubelet {name}", kubelet.run, kubelet.wake)
        return kubelet

    def make_not_ready(self, node: str) -> None:
        """A lost machine: processes SIGKILLed, heartbeats stop, node Unknown and tainted."""
        self._stop_kubelet(node, forget=False)
        self.lifecycle.mark_unreachable(node)

    def make_ready(self, node: str) -> None:
        """The machine is back: taints removed, the kubelet registers and heartbeats again."""
        kubelet = self._kubelet(node)
        if node in self._loops:
            return
        self.lifecycle.mark_reachable(node)
        kubelet.register()
        self._loops[node] = _Loop(f"kubelet {node}", kubelet.run, kubelet.wake)

    def remove_node(self, node: str) -> None:
        """Delete the Node; its processes are killed and pod GC deletes its pods."""
        self._stop_kubelet(node)
        self._client().delete(nodes_path(node))

    def _stop_kubelet(self, node: str, *, forget: bool = True) -> None:
        kubelet = self._kubelet(node)
        loop = self._loops.pop(node, None)
        if loop is not None:
            loop.stop()
        kubelet.stop()
        if forget:
            del self.kubelets[node]

    def _kubelet(self, node: str) -> Kubelet:
        if node not in self.kubelets:
            raise KeyError(f"no node {node!r} in this cluster (nodes: {sorted(self.kubelets)})")
        return self.kubelets[node]

    def _client(self) -> KubeClient:
        client = KubeClient(self.url, self.server.token)
        self._clients.append(client)
        return client

    def _pods_changed(self) -> None:
        self.scheduler.wake.set()
        self.lifecycle.wake.set()
        for kubelet in list(self.kubelets.values()):
            kubelet.wake.set()

    def _nodes_changed(self) -> None:
        self.scheduler.wake.set()
        self.lifecycle.wake.set()
