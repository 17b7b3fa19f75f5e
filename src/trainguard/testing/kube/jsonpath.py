"""The JSONPath subset a CRD's ``additionalPrinterColumns`` use, evaluated as kubectl's does.

A printer column's ``jsonPath`` is a Kubernetes JSONPath expression without braces. CRDs in
practice use field access (``.status.phase``), indexes and slices (``[0]``, ``[-1:]``), the
wildcard ``[*]`` and equality filters (``[?(@.type=="Ready")]``, also ``!=``); that is what this
module implements. Anything else (recursive descent ``..``, unions, functions) is refused with
`ValueError` when the column is compiled, so a CRD using it fails loudly instead of printing
nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Step = Callable[[list[Any]], list[Any]]

_FIELD = re.compile(r"\.([A-Za-z0-9_\-/]+)")
_BRACKET = re.compile(r"\[([^\]]*)\]")
_FILTER = re.compile(r"^\?\(@((?:\.[A-Za-z0-9_\-/]+)+)\s*(==|!=)\s*(.+)\)$")
_SLICE = re.compile(r"^(-?\d*):(-?\d*)$")


def compile_path(expression: str) -> Callable[[Any], list[Any]]:
    """A function returning every value `expression` selects from a JSON document.

    Raises:
        ValueError: naming the expression and the unsupported part.
    """
    steps = _parse(expression.strip().removeprefix("{").removesuffix("}"))

    def evaluate(document: Any) -> list[Any]:
        values = [document]
        for step in steps:
            values = step(values)
        return values

    return evaluate


def _parse(expression: str) -> list[Step]:
    steps: list[Step] = []
    rest = expression.removeprefix("$")
    while rest:
        if rest.startswith(".."):
            raise ValueError(f"jsonPath {expression!r}: recursive descent '..' is not supported")
        field = _FIELD.match(rest)
        if field:
            steps.append(_child(field.group(1)))
            rest = rest[field.end() :]
            continue
        bracket = _BRACKET.match(rest)
        if not bracket:
            raise ValueError(f"jsonPath {expression!r}: cannot parse at {rest!r}")
        steps.append(_subscript(bracket.group(1).strip(), expression))
        rest = rest[bracket.end() :]
    return steps


def _child(name: str) -> Step:
    return lambda values: [v[name] for v in values if isinstance(v, dict) and name in v]


def _subscript(inner: str, expression: str) -> Step:
    if inner == "*":
        return lambda values: [item for v in values for item in _members(v)]
    if re.fullmatch(r"-?\d+", inner):
        return _index(int(inner))
    if _SLICE.match(inner):
        start, stop = (int(p) if p else None for p in inner.split(":"))
        return lambda values: [
            item for v in values if isinstance(v, list) for item in v[start:stop]
        ]
    if _FILTER.match(inner):
        return _filter(inner, expression)
    if re.fullmatch(r"'[^']*'|\"[^\"]*\"", inner):
        return _child(inner[1:-1])
    raise ValueError(f"jsonPath {expression!r}: unsupported subscript [{inner}]")


def _index(index: int) -> Step:
    def pick(values: list[Any]) -> list[Any]:
        return [v[index] for v in values if isinstance(v, list) and -len(v) <= index < len(v)]

    return pick


def _filter(inner: str, expression: str) -> Step:
    match = _FILTER.match(inner)
    assert match is not None  # checked by the caller
    path, operator, literal = match.groups()
    wanted = _literal(literal.strip(), expression)
    select = compile_path(path)

    def keep(item: Any) -> bool:
        found = select(item)
        equal = bool(found) and found[0] == wanted
        return equal if operator == "==" else not equal

    return lambda values: [item for v in values for item in _members(v) if keep(item)]


def _literal(text: str, expression: str) -> Any:
    if text[:1] == "'" and text[-1:] == "'":
        return text[1:-1]
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"jsonPath {expression!r}: cannot read the literal {text}") from exc


def _members(value: Any) -> list[Any]:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return list(value.values())
    return []
