"""Entry point of the ``trainguard`` command: registers every sub-command.

This module only wires; each command lives in the module named after it, and imports heavy
dependencies (torch, uvicorn) lazily so ``trainguard validate`` starts fast. Help texts come
from docstrings written for developers (reStructuredText) and are rendered by typer through
rich markup, which ate ``[gpu]`` and showed ````--overwrite````; `trainguard.cli.helptext`
turns every help string into plain, escaped text before typer sees it.
"""

from __future__ import annotations

import platform
from typing import Annotated, Any

import typer

from trainguard import __version__, heap
from trainguard.cli import agent as agent_cmd
from trainguard.cli import checkpoint as checkpoint_cmd
from trainguard.cli import cluster as cluster_cmd
from trainguard.cli import faults as faults_cmd
from trainguard.cli import health as health_cmd
from trainguard.cli import jobs as jobs_cmd
from trainguard.cli import nodes as nodes_cmd
from trainguard.cli import operator as operator_cmd
from trainguard.cli import report as report_cmd
from trainguard.cli import run as run_cmd
from trainguard.cli import validate as validate_cmd
from trainguard.cli.console import handle_errors
from trainguard.cli.helptext import plain_help

app = typer.Typer(
    name="trainguard",
    help="Resilient distributed PyTorch training (HyperPodPyTorchJob compatible).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

app.command("validate")(handle_errors(validate_cmd.validate))
app.command("crd")(handle_errors(validate_cmd.print_crd))
app.command("run")(handle_errors(run_cmd.run))
app.command("controller")(handle_errors(cluster_cmd.controller))
app.command("operator")(handle_errors(operator_cmd.operator))
app.add_typer(cluster_cmd.cluster_app, name="cluster")
jobs_cmd.job_app.command("report")(handle_errors(report_cmd.report))
app.add_typer(jobs_cmd.job_app, name="job")
app.add_typer(faults_cmd.fault_app, name="fault")
app.add_typer(nodes_cmd.node_app, name="node")
app.command("agent", context_settings=agent_cmd.CONTEXT, add_help_option=False)(agent_cmd.agent)
app.add_typer(health_cmd.health_app, name="health")
app.add_typer(checkpoint_cmd.checkpoint_app, name="checkpoint")
app.command("health-agent")(handle_errors(health_cmd.health_agent))


def _version_text() -> str:
    return f"trainguard {__version__} (python {platform.python_version()})"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(_version_text())
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Resilient distributed PyTorch training (HyperPodPyTorchJob compatible)."""
    del version


@app.command("version")
def version() -> None:
    """Print trainguard's version."""
    typer.echo(_version_text())


def command() -> Any:
    """The click command of the CLI, with every help text made plain."""
    return plain_help(typer.main.get_command(app))


def main() -> None:
    """Console-script entry point (click exits the process with the command's code)."""
    try:
        command()(prog_name="trainguard")
    finally:
        heap.freeze()  # the exit's last collection would visit every object: `trainguard.heap`
