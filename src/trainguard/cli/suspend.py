"""``trainguard job suspend NAME`` and ``trainguard job resume NAME``.

They set the job's ``spec.runPolicy.suspend`` in the local cluster's store — what ``kubectl
patch hpjob NAME --type merge -p '{"spec":{"runPolicy":{"suspend":true}}}'`` does on
Kubernetes — and the controller acts on it: a suspended job's pods are stopped without counting
a restart, a resumed one is started again from its newest checkpoint
(`trainguard.controller.suspension`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from trainguard.cli import console
from trainguard.cli.console import handle_errors
from trainguard.cli.local import open_cluster

Namespace = Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")]


@handle_errors
def suspend(name: str, namespace: Namespace = "default") -> None:
    """Stop a job's pods until it is resumed (runPolicy.suspend = true; no restart counted)."""
    open_cluster().store.set_suspend(namespace, name, suspend=True)
    console.out.print(f"job {name} suspended", markup=False)


@handle_errors
def resume(name: str, namespace: Namespace = "default") -> None:
    """Let a suspended job run again, from its newest checkpoint (runPolicy.suspend = false)."""
    open_cluster().store.set_suspend(namespace, name, suspend=False)
    console.out.print(f"job {name} resumed", markup=False)
