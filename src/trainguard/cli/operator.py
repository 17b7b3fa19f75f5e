"""``trainguard operator``: the Kubernetes operator in the foreground (what its Deployment runs).

Parsing only; `trainguard.operator.main` builds and runs it. Exits 0 after SIGTERM/SIGINT (the
Lease is released so a standby takes over at once) and 3 after losing the Lease.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from trainguard.cli import console


def operator(
    *,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig",
            envvar="KUBECONFIG",
            help="Kubeconfig file (default: $KUBECONFIG, else the in-cluster service account).",
        ),
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="Kubeconfig context.")] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            metavar="NAMESPACE",
            help="Reconcile jobs of this namespace (repeat; default: all).",
        ),
    ] = None,
    lease_namespace: Annotated[
        str | None,
        typer.Option("--lease-namespace", help="Namespace of the leader-election Lease."),
    ] = None,
    metrics_port: Annotated[
        int, typer.Option("--metrics-port", help="Serve /metrics here (0: off).")
    ] = 8080,
    health_port: Annotated[
        int, typer.Option("--health-port", help="Serve /healthz and /readyz here.")
    ] = 8081,
    callback_port: Annotated[
        int, typer.Option("--callback-port", help="Agents push their status here.")
    ] = 8082,
    bind: Annotated[
        str, typer.Option("--bind", help="Address the operator's endpoints listen on.")
    ] = "0.0.0.0",
    lease_seconds: Annotated[
        float, typer.Option("--lease-seconds", min=1.0, help="Leader-election Lease duration.")
    ] = 15.0,
) -> None:
    """Run the Kubernetes operator: reconcile HyperPodPyTorchJob objects until SIGTERM."""
    from trainguard.operator.main import OperatorOptions, run  # noqa: PLC0415 (lightkube: lazy)

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for chatty in ("httpx", "httpx2"):  # one INFO line per request, every watch and renewal
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if kubeconfig is not None and not kubeconfig.is_file():
        console.fail(f"--kubeconfig {kubeconfig}: no such file")
    options = OperatorOptions(
        kubeconfig=kubeconfig,
        context=context,
        namespaces=tuple(namespace or ()),
        lease_namespace=lease_namespace,
        metrics_port=metrics_port or None,
        health_port=health_port,
        callback_port=callback_port,
        bind=bind,
        lease_seconds=lease_seconds,
    )
    code = run(options)
    if code:
        raise typer.Exit(code)
