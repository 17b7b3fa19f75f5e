"""``trainguard agent ...``: the elastic agent, the same program as ``hyperpodrun``.

Arguments are torchrun's plus hyperpodrun's and are parsed by the agent itself (argparse, on
torchrun's parser), so this command passes everything through untouched.
"""

from __future__ import annotations

import typer

CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}


def agent(ctx: typer.Context) -> None:
    """Run the per-pod elastic agent (torchrun arguments + hyperpodrun's; see --help)."""
    from trainguard.agent.main import main  # noqa: PLC0415 (torch only for this command)

    raise typer.Exit(main(list(ctx.args)))
