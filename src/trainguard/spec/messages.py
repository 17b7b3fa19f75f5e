"""Turn pydantic's validation errors into `SpecIssue` values a person can act on.

Pydantic's own messages ("Input should be 'gt', 'gteq'...") describe the validator; ours name
the field path in manifest spelling (``spec.replicaSpecs[0].replicas``) and say what the value
must be, the way ``kubectl`` users read API-server errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from trainguard.errors import SpecIssue
from trainguard.spec.base import join_path

MAX_SHOWN_INPUT = 60
_UNEXPANDED = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")


def issues_from_validation(
    error: ValidationError, *, prefix: str = "", path_map: Callable[[str], str] | None = None
) -> list[SpecIssue]:
    """One `SpecIssue` per pydantic error, with paths under ``prefix``."""
    issues = []
    for detail in error.errors(include_url=False):
        path = location(detail["loc"], prefix)
        issues.append(SpecIssue(path_map(path) if path_map else path, message(detail)))
    return issues


def location(loc: Iterable[int | str], prefix: str = "") -> str:
    """``('spec', 'replicaSpecs', 0, 'name')`` -> ``spec.replicaSpecs[0].name``."""
    path = prefix
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else join_path(path, part)
    return path


def message(detail: ErrorDetails) -> str:
    """A sentence for one error: what the value must be, and what it was."""
    kind, ctx = detail["type"], detail.get("ctx") or {}
    render = _MESSAGES.get(kind)
    if kind == "value_error":
        text = str(ctx.get("error", detail["msg"]))
    else:
        text = render(ctx) if render else _lower_first(detail["msg"])
    if kind in _SHOW_INPUT:
        text += f", got {_show(detail.get('input'))}"
    if kind == "string_type" and isinstance(detail.get("input"), bool | int | float):
        text += " (quote numbers and booleans in YAML)"
    unexpanded = isinstance(detail.get("input"), str) and _UNEXPANDED.search(detail["input"])
    if unexpanded and "envsubst" not in text:
        text += " (an unexpanded variable: run envsubst first, or pass --envsubst)"
    return text


def _expected(ctx: dict[str, Any]) -> str:
    raw = str(ctx.get("expected", ""))
    return raw.replace("'", "").replace(" or ", ", ")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_INPUT else text[: MAX_SHOWN_INPUT - 3] + "..."


def _items(count: Any) -> str:
    return f"{count} item" + ("" if count == 1 else "s")


_MESSAGES: dict[str, Callable[[dict[str, Any]], str]] = {
    "missing": lambda _: "required",
    "int_type": lambda _: "must be an integer",
    "int_parsing": lambda _: "must be an integer",
    "int_from_float": lambda _: "must be a whole number",
    "float_type": lambda _: "must be a number",
    "float_parsing": lambda _: "must be a number",
    "string_type": lambda _: "must be a string",
    "bool_type": lambda _: "must be true or false",
    "bool_parsing": lambda _: "must be true or false",
    "list_type": lambda _: "must be a list",
    "dict_type": lambda _: "must be a mapping of keys to values",
    "model_type": lambda _: "must be a mapping of keys to values",
    "model_attributes_type": lambda _: "must be a mapping of keys to values",
    "literal_error": lambda ctx: f"must be one of {_expected(ctx)}",
    "enum": lambda ctx: f"must be one of {_expected(ctx)}",
    "greater_than_equal": lambda ctx: f"must be at least {ctx.get('ge')}",
    "greater_than": lambda ctx: f"must be greater than {ctx.get('gt')}",
    "less_than_equal": lambda ctx: f"must be at most {ctx.get('le')}",
    "less_than": lambda ctx: f"must be less than {ctx.get('lt')}",
    "too_short": lambda ctx: f"must have at least {_items(ctx.get('min_length'))}",
    "too_long": lambda ctx: f"must have at most {_items(ctx.get('max_length'))}",
    "string_too_short": lambda ctx: (
        "must not be empty"
        if ctx.get("min_length") == 1
        else f"must be at least {ctx.get('min_length')} characters"
    ),
    "string_too_long": lambda ctx: f"must be at most {ctx.get('max_length')} characters",
}

_SHOW_INPUT = {
    "int_type",
    "int_parsing",
    "int_from_float",
    "float_type",
    "float_parsing",
    "string_type",
    "bool_type",
    "bool_parsing",
    "list_type",
    "dict_type",
    "model_type",
    "model_attributes_type",
    "literal_error",
    "enum",
    "greater_than_equal",
    "greater_than",
    "less_than_equal",
    "less_than",
}
