"""Where ``trainguard health-agent`` finds a Kubernetes Node: the options and the sink.

The health package may not import backends (layers), so the CLI — a composition root — builds
the Kubernetes sink. Kept apart from ``cli/health`` so that file stays about the checks and so
the chart's DaemonSet has two plain flags to set: ``--in-cluster`` (the pod's service account)
or ``--kubeconfig FILE``, and ``--node`` (or ``$NODE_NAME`` from the downward API).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainguard.backends.kubernetes.client import KubeClient, load_config
from trainguard.backends.kubernetes.nodesink import COMPONENT, KubeNodeSink
from trainguard.errors import NotFoundError, UsageError
from trainguard.health import NodeStatusSink

KubeconfigOpt = Annotated[
    Path | None,
    typer.Option("--kubeconfig", help="Write the Node through this cluster's API."),
]
InClusterOpt = Annotated[
    bool,
    typer.Option("--in-cluster", help="Write the Node through the pod's service account."),
]


def kube_sink(node: str, *, kubeconfig: Path | None) -> NodeStatusSink:
    """The sink for Kubernetes Node ``node`` (in-cluster config without ``kubeconfig``).

    Raises:
        UsageError: the kubeconfig cannot be read, or the cluster has no Node ``node``.
    """
    if kubeconfig is not None and not kubeconfig.is_file():
        raise UsageError(f"--kubeconfig: {kubeconfig} is not a file")
    client = KubeClient(load_config(kubeconfig), field_manager=COMPONENT)
    sink = KubeNodeSink(client)
    try:
        sink.node_labels(node)
    except NotFoundError as exc:
        raise UsageError(f"--node: the cluster has no Node {node!r}") from exc
    return sink
