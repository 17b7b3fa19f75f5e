"""The size and depth of a YAML node graph with its aliases expanded, counted without expanding.

PyYAML's composer turns ``*alias`` into a second reference to the anchored node, so the graph
it returns is as small as the text; what is big is the tree that anchors and aliases describe
(nine levels of ten aliases each describe a billion nodes). Every consumer after the composer
(the constructor's objects, pydantic, JSON, the store) walks that tree. `check_expansion`
computes the tree's node count and height on the graph — each distinct node once, with a memo,
iteratively so a deep graph cannot exhaust the stack — and stops as soon as a limit is passed.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml


class LimitExceeded(yaml.YAMLError):
    """A manifest passed one of the reading limits; ``mark`` says where, when known."""

    def __init__(self, problem: str, mark: yaml.Mark | None = None) -> None:
        super().__init__(problem)
        self.problem, self.mark = problem, mark

    def describe(self) -> str:
        """``manifest over a limit at line L, column C: <problem>``."""
        if self.mark is None:
            return f"manifest over a limit: {self.problem}"
        where = f"line {self.mark.line + 1}, column {self.mark.column + 1}"
        return f"manifest over a limit at {where}: {self.problem}"


@dataclass
class _Size:
    nodes: int
    height: int


def check_expansion(root: yaml.Node, *, max_nodes: int, max_depth: int) -> None:
    """Raise `LimitExceeded` if ``root`` expands past ``max_nodes`` nodes or ``max_depth`` levels.

    Also refuses a node that contains itself (``&a [*a]``), which has no finite expansion.
    """
    sizes: dict[int, _Size] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            sizes[key] = _total(node, sizes)
            _enforce(sizes[key], node, max_nodes=max_nodes, max_depth=max_depth)
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise LimitExceeded("an alias refers to a node that contains it", node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _total(node: yaml.Node, sizes: dict[int, _Size]) -> _Size:
    children = [sizes[id(child)] for child in _children(node)]
    return _Size(
        nodes=1 + sum(child.nodes for child in children),
        height=1 + max((child.height for child in children), default=0),
    )


def _enforce(size: _Size, node: yaml.Node, *, max_nodes: int, max_depth: int) -> None:
    if size.nodes > max_nodes:
        raise LimitExceeded(
            f"expands (aliases included) to more than {max_nodes} YAML nodes", node.start_mark
        )
    if size.height > max_depth:
        raise LimitExceeded(
            f"nested (aliases included) more than {max_depth} levels deep", node.start_mark
        )
