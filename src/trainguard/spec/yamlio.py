"""YAML in and out for manifests.

Reading refuses duplicate keys (PyYAML silently keeps the last one, so ``replicas`` written twice
would hide a mistake) and reports syntax errors with their line. Writing keeps key order and
block style, so ``trainguard validate --output yaml`` reads like what people write by hand.

Reading is also bounded (`trainguard.spec.limits`), because a manifest is untrusted input: the
text's size is checked first; nesting depth while PyYAML composes its node graph (the composer
recurses, so ``[[[[...`` would otherwise end in a raw RecursionError); and each document's size
*with aliases expanded* on the node graph, before any Python object is built, so a
billion-laughs bomb costs a few hundred node visits instead of gigabytes downstream.
"""

from __future__ import annotations

from typing import Any

import yaml

from trainguard.errors import SpecError, SpecIssue
from trainguard.spec.limits import MAX_MANIFEST_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES
from trainguard.spec.yamlsize import LimitExceeded, check_expansion


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a mapping with the same key twice and nesting past the limit."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise LimitExceeded(f"nested more than {MAX_YAML_DEPTH} levels deep", mark)
            node: yaml.Node | None = super().compose_node(parent, index)
            assert node is not None, "compose_node returns a node or raises"
            return node
        finally:
            self.depth -= 1


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_documents(text: str, *, source: str) -> list[tuple[int, Any]]:
    """Every non-empty YAML document of ``text`` with its 0-based index in the stream.

    Raises:
        SpecError: not YAML, a duplicate key, or a limit of `trainguard.spec.limits` exceeded.
    """
    check_size(len(text.encode("utf-8", "surrogatepass")), source=source)
    loader = _StrictLoader(text)
    documents: list[Any] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            check_expansion(node, max_nodes=MAX_YAML_NODES, max_depth=MAX_YAML_DEPTH)
            documents.append(loader.construct_document(node))
    except LimitExceeded as exc:
        raise SpecError(source, [SpecIssue("", exc.describe())]) from exc
    except yaml.YAMLError as exc:
        raise SpecError(source, [SpecIssue("", _describe(exc))]) from exc
    finally:
        loader.dispose()
    return [(index, doc) for index, doc in enumerate(documents) if doc is not None]


def check_size(size: int, *, source: str) -> None:
    """Refuse a manifest of ``size`` bytes above `MAX_MANIFEST_BYTES` (before parsing it)."""
    if size > MAX_MANIFEST_BYTES:
        raise SpecError(
            source,
            [SpecIssue("", f"manifest is larger than the limit of {MAX_MANIFEST_BYTES} bytes")],
        )


def dump(document: Any) -> str:
    """Block-style YAML with the key order of ``document``."""
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _describe(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
