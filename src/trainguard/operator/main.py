"""``trainguard operator``: wire the Kubernetes store and backend to the controller and run it.

The one place where the operator's objects are built (a composition root, like the CLI's
commands): a lightkube client from a kubeconfig or the in-cluster service account, the
`KubernetesStore` (list+watch caches), a `KubernetesBackend` reading Pods and Nodes from those
caches, the shared `Controller`, its Prometheus metrics, the probes and the `Operator` loop.

Agents push their status to the controller's callback endpoint. In a cluster the operator binds
it on every interface and tells the agents its pod IP (``POD_IP``, set from the downward API by
the chart); outside a cluster (the test cluster, a laptop) the pods are reachable local
addresses and the operator advertises 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from trainguard.backends.kubernetes.backend import KubernetesBackend
from trainguard.backends.kubernetes.client import KubeClient, load_config
from trainguard.backends.kubernetes.kueue import KueueGate
from trainguard.backends.kubernetes.reader import InformerReader
from trainguard.backends.kubernetes.store import KubernetesStore
from trainguard.controller.deps import ControllerSettings
from trainguard.controller.loop import Controller
from trainguard.errors import LeaseLostError
from trainguard.metrics import Metrics
from trainguard.operator.feed import CacheFeed
from trainguard.operator.health import Probes, ProbeServer
from trainguard.operator.runner import Operator, OperatorSettings

log = logging.getLogger(__name__)
ENV_POD_IP = "POD_IP"
EXIT_LEASE_LOST = 3
"""Exit status after losing the Lease: the Deployment restarts the replica as a standby."""


@dataclass(frozen=True)
class OperatorOptions:
    """What ``trainguard operator`` is told on its command line."""

    kubeconfig: Path | None = None
    """The kubeconfig file; None: the in-cluster service account."""
    context: str | None = None
    namespaces: tuple[str, ...] = ()
    """The namespaces whose jobs are reconciled; empty: every namespace."""
    lease_namespace: str | None = None
    """Where the Lease lives (default: the kubeconfig's or service account's namespace)."""
    metrics_port: int | None = 8080
    health_port: int = 8081
    callback_port: int = 8082
    lease_seconds: float = 15.0
    bind: str = "0.0.0.0"
    """Address the probe, metrics and callback endpoints bind."""


def build(options: OperatorOptions) -> tuple[Operator, ProbeServer]:
    """The operator and its probe server, connected to the cluster (caches synced)."""
    client = KubeClient(load_config(options.kubeconfig, context=options.context))
    store = KubernetesStore(
        client, namespaces=options.namespaces, lease_namespace=options.lease_namespace
    )
    backend = KubernetesBackend(
        client=client, reader=InformerReader(client, pods=store.pods, nodes=store.nodes)
    )
    settings = ControllerSettings(
        lease_duration=options.lease_seconds,
        callback_host=options.bind,
        callback_port=options.callback_port,
        callback_advertise=os.environ.get(ENV_POD_IP) or "127.0.0.1",
    )
    metrics = Metrics()
    gate = KueueGate(client, namespaces=options.namespaces)
    controller = Controller(
        store=store, backend=backend, settings=settings, metrics=metrics, gate=gate
    )
    feed = CacheFeed(jobs=store.jobs, pods=store.pods, nodes=store.nodes, others=store.informers)
    probes = Probes(ready=feed.synced)
    if options.metrics_port is not None:
        metrics.serve(options.metrics_port, host=options.bind)
        controller.metrics_url = f"http://{settings.callback_advertise}:{options.metrics_port}"
    operator = Operator(controller, feed, probes=probes, settings=OperatorSettings())
    return operator, ProbeServer(probes, host=options.bind, port=options.health_port)


def run(options: OperatorOptions) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or a lost Lease (`EXIT_LEASE_LOST`)."""
    operator, probes = build(options)
    probes.start()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del frame
        log.info("signal %s: finishing the current step and releasing the Lease", signum)
        operator.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        operator.run()
    except LeaseLostError as exc:
        log.error("%s; exiting so this replica restarts as a standby", exc)
        return EXIT_LEASE_LOST
    finally:
        probes.stop()
        operator.controller.deps.gate.close()
        operator.controller.store.close()
    return 0
