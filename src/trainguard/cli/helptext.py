"""Help texts as a terminal should show them: no reStructuredText, no rich markup.

Docstrings follow the project's style (````literal````, ``:class:`X```, Google sections) and
typer prints them as help through rich, which takes ``[gpu]`` for a style tag and drops it.
`plain_help` rewrites every command's and parameter's help once, when the CLI is built:
RST literals and roles become the bare words, and what is left is escaped for rich.
"""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_INTERPRETED = re.compile(r"`([^`]+)`")


def plain(text: str | None) -> str | None:
    """``text`` without RST markup, escaped so rich prints it as written."""
    if text is None:
        return None
    for pattern in (_ROLE, _LITERAL, _INTERPRETED):
        text = pattern.sub(r"\1", text)
    return escape(text)


def plain_help(command: Any) -> Any:
    """``command`` (a click command built by typer, which vendors click) and all its
    sub-commands and parameters with plain help, changed in place."""
    command.help = plain(command.help)
    command.short_help = plain(command.short_help)
    for param in command.params:
        if hasattr(param, "help"):
            param.help = plain(param.help)
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command
