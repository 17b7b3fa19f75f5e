"""Where the CLI writes: results to stdout, diagnostics to stderr, and exit codes.

Keeping stdout for results only is what makes ``--output json`` pipeable into ``jq``; every
warning, error and progress line goes to stderr.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console

from trainguard.errors import SpecError, TrainguardError, UserError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_FAULT_NOT_INJECTED = 3
"""A requested fault could not be injected (``run``, ``fault inject``): the test did not run."""

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


def print_json(value: Any) -> None:
    """Exactly one JSON document on stdout."""
    typer.echo(json.dumps(value, indent=2, allow_nan=True))


def warn(text: str) -> None:
    """A warning line on stderr."""
    err.print(f"warning: {text}", style="yellow", markup=False)


def error(text: str) -> None:
    """An error line on stderr."""
    err.print(f"error: {text}", style="red", markup=False)


def fail(text: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``text`` as an error and exit with ``code``."""
    error(text)
    raise typer.Exit(code)


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn our exceptions into a message and an exit code (2 for user errors, 1 otherwise)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except SpecError as exc:
            for issue in exc.issues:
                error(issue.render(exc.source))
            raise typer.Exit(EXIT_USAGE) from exc
        except UserError as exc:
            fail(str(exc), EXIT_USAGE)
        except TrainguardError as exc:
            fail(str(exc), EXIT_FAILED)

    return wrapper
