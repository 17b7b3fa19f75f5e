"""Entry point of the ``trainguard`` command: registers every sub-command.

This module only wires; each command lives in the module named after it, and imports heavy
dependencies (torch, uvicorn) lazily so ``trainguard validate`` starts fast.
"""

from __future__ import annotations

import platform

import typer

from trainguard import __version__
from trainguard.cli import agent as agent_cmd
from trainguard.cli import cluster as cluster_cmd
from trainguard.cli import jobs as jobs_cmd
from trainguard.cli import nodes as nodes_cmd
from trainguard.cli import run as run_cmd
from trainguard.cli import validate as validate_cmd
from trainguard.cli.console import handle_errors

app = typer.Typer(
    name="trainguard",
    help="Resilient distributed PyTorch training (HyperPodPyTorchJob compatible).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("validate")(handle_errors(validate_cmd.validate))
app.command("crd")(handle_errors(validate_cmd.print_crd))
app.command("run")(handle_errors(run_cmd.run))
app.command("controller")(handle_errors(cluster_cmd.controller))
app.add_typer(cluster_cmd.cluster_app, name="cluster")
app.add_typer(jobs_cmd.job_app, name="job")
app.add_typer(jobs_cmd.fault_app, name="fault")
app.add_typer(nodes_cmd.node_app, name="node")
app.command("agent", context_settings=agent_cmd.CONTEXT, add_help_option=False)(agent_cmd.agent)


@app.command("version")
def version() -> None:
    """Print trainguard's version."""
    typer.echo(f"trainguard {__version__} (python {platform.python_version()})")


def main() -> None:
    """Console-script entry point."""
    app()
