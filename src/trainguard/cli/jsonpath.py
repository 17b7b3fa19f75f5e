"""kubectl's ``-o jsonpath=TEMPLATE``: the subset scripts use, on plain JSON values.

Supported: text with ``{...}`` expressions; paths of ``.field``, ``['field.with.dots']``,
``[N]`` (negative from the end), ``[*]`` and ``.*``; string literals ``{"\\n"}``; and
``{range PATH}...{end}`` over a list. Several results of one path are joined by a space, as
kubectl does; strings print as they are, other values as JSON. Anything else is refused with a
clear error rather than guessed at (a filter ``[?(@.x)]`` is not supported).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from trainguard.errors import UsageError

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z_$][\w$-]*)"""
    r"""|\[(?P<index>-?\d+)\]"""
    r"""|\[['"](?P<quoted>[^'"]+)['"]\]"""
    r"""|(?P<all>\[\*\]|\.\*)"""
)


@dataclass(frozen=True)
class _Node:
    """One piece of a template: literal text, a path, or a range over a path."""

    text: str | None = None
    path: str | None = None
    body: tuple[_Node, ...] = ()
    is_range: bool = False


def render(template: str, value: Any) -> str:
    """``template`` filled from ``value``.

    Raises:
        UsageError: the template is malformed or uses what is not supported.
    """
    nodes, rest = _parse(_pieces(template), top=True)
    del rest
    return "".join(_render(nodes, value))


def select(path: str, value: Any) -> list[Any]:
    """Every value ``path`` (``.a.b[0]``, with or without the leading ``$``) reaches."""
    spec = path.strip()
    spec = spec[1:] if spec.startswith("$") else spec
    found = [value]
    position = 0
    while position < len(spec):
        match = _TOKEN.match(spec, position)
        if match is None:
            raise UsageError(f"jsonpath: cannot parse {spec[position:]!r} in {path!r}")
        found = [item for current in found for item in _step(match, current)]
        position = match.end()
    return found


def _step(match: re.Match[str], current: Any) -> Iterator[Any]:
    key = match["field"] or match["quoted"]
    if key is not None:
        if isinstance(current, dict) and key in current:
            yield current[key]
    elif match["index"] is not None:
        index = int(match["index"])
        if isinstance(current, list) and -len(current) <= index < len(current):
            yield current[index]
    elif isinstance(current, list):
        yield from current
    elif isinstance(current, dict):
        yield from current.values()


def _pieces(template: str) -> list[tuple[str, str]]:
    """``[("text", ...), ("expr", ...)]`` from ``a{.b}c``."""
    pieces, position = [], 0
    for match in re.finditer(r"\{((?:\"(?:[^\"\\]|\\.)*\"|[^{}])*)\}", template):
        if match.start() > position:
            pieces.append(("text", template[position : match.start()]))
        pieces.append(("expr", match[1].strip()))
        position = match.end()
    tail = template[position:]
    if "{" in tail or "}" in tail:
        raise UsageError(f"jsonpath: unbalanced braces in {template!r}")
    if tail:
        pieces.append(("text", tail))
    return pieces


def _parse(pieces: list[tuple[str, str]], *, top: bool) -> tuple[tuple[_Node, ...], list[Any]]:
    nodes: list[_Node] = []
    while pieces:
        kind, value = pieces.pop(0)
        if kind == "text":
            nodes.append(_Node(text=value))
        elif value == "end":
            if top:
                raise UsageError("jsonpath: {end} without {range}")
            return tuple(nodes), pieces
        elif value.startswith("range "):
            body, pieces = _parse(pieces, top=False)
            path = value.removeprefix("range ").strip()
            nodes.append(_Node(path=path, body=body, is_range=True))
        elif value.startswith('"'):
            nodes.append(_Node(text=_literal(value)))
        else:
            nodes.append(_Node(path=value))
    if not top:
        raise UsageError("jsonpath: {range} without {end}")
    return tuple(nodes), pieces


def _render(nodes: tuple[_Node, ...], value: Any) -> Iterator[str]:
    for node in nodes:
        if node.text is not None:
            yield node.text
        elif node.is_range:
            for item in select(node.path or "", value):
                yield from _render(node.body, item)
        else:
            yield " ".join(_show(v) for v in select(node.path or "", value))


def _literal(value: str) -> str:
    try:
        text = json.loads(value)
    except json.JSONDecodeError as exc:
        raise UsageError(f"jsonpath: bad string literal {value}") from exc
    return str(text)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
