"""``-o/--output`` for every command that prints objects: one parser, one printer.

Four commands accepted ``-o yaml`` and printed text; each command had its own idea of which
formats exist. Here every ``--output`` value is parsed once (`parse_format`) against what the
command supports, and anything else is refused with exit 2 naming the accepted values, so a
format is either honoured or refused, never ignored. Formats follow kubectl: ``text`` (the
default table or description), ``wide`` (more columns), ``json``, ``yaml``, and
``jsonpath=TEMPLATE`` (`trainguard.cli.jsonpath`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from trainguard.cli import console, jsonpath
from trainguard.errors import UsageError
from trainguard.spec import dump_yaml

TEXT, WIDE, JSON, YAML, JSONPATH = "text", "wide", "json", "yaml", "jsonpath"
DOCUMENTS = (JSON, YAML)
"""Formats that print a whole document."""
OBJECTS = (TEXT, JSON, YAML)
"""What commands printing one result support."""
LISTS = (TEXT, WIDE, JSON, YAML, JSONPATH)
"""What ``job list`` and ``job describe`` support (kubectl's set)."""


@dataclass(frozen=True)
class Format:
    """A parsed ``--output``: the format and, for jsonpath, its template."""

    kind: str
    template: str = ""

    @property
    def is_document(self) -> bool:
        """json, yaml or jsonpath: stdout gets data, not a table."""
        return self.kind in (JSON, YAML, JSONPATH)


def option(supported: tuple[str, ...], what: str = "") -> Any:
    """The ``--output/-o`` option of a command supporting ``supported``."""
    shown = "|".join(f"{s}=TEMPLATE" if s == JSONPATH else s for s in supported)
    return typer.Option("--output", "-o", help=f"{shown}{what}")


OutputText = Annotated[str, option(OBJECTS)]


def parse_format(value: str, supported: tuple[str, ...]) -> Format:
    """``value`` as a `Format`; raises `UsageError` for one the command does not support."""
    kind, sep, template = value.partition("=")
    if kind == JSONPATH and JSONPATH in supported:
        if not sep or not template:
            raise UsageError("--output jsonpath needs a template: -o jsonpath='{.metadata.name}'")
        return Format(JSONPATH, template)
    if sep or kind not in supported:
        accepted = ", ".join(f"{s}=TEMPLATE" if s == JSONPATH else s for s in supported)
        raise UsageError(f"--output: {value!r} is not supported here; use one of {accepted}")
    return Format(kind)


def emit(document: Any, fmt: Format) -> None:
    """Print ``document`` as ``fmt`` (json, yaml or jsonpath) on stdout."""
    if fmt.kind == JSON:
        console.print_json(document)
    elif fmt.kind == YAML:
        typer.echo(dump_yaml(document), nl=False)
    elif fmt.kind == JSONPATH:
        typer.echo(jsonpath.render(fmt.template, document), nl=False)  # as kubectl: no newline
    else:
        raise UsageError(f"--output {fmt.kind} prints no document")


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """kubectl's ``List`` wrapper."""
    return {"apiVersion": "v1", "kind": "List", "items": items}
