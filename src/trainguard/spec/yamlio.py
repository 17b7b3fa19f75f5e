"""YAML in and out for manifests.

Reading refuses duplicate keys (PyYAML silently keeps the last one, so ``replicas`` written twice
would hide a mistake) and reports syntax errors with their line. Writing keeps key order and
block style, so ``trainguard validate --output yaml`` reads like what people write by hand.
"""

from __future__ import annotations

from typing import Any

import yaml

from trainguard.errors import SpecError, SpecIssue


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a mapping with the same key twice."""


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
    """Every non-empty YAML document of ``text`` with its 0-based index in the stream."""
    try:
        documents = list(yaml.load_all(text, Loader=_StrictLoader))
    except yaml.YAMLError as exc:
        raise SpecError(source, [SpecIssue("", _describe(exc))]) from exc
    return [(index, doc) for index, doc in enumerate(documents) if doc is not None]


def dump(document: Any) -> str:
    """Block-style YAML with the key order of ``document``."""
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _describe(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
