"""Field sets of server-side apply: which fields of an object a manager owns, in ``FieldsV1``.

``metadata.managedFields[].fieldsV1`` is a trie whose keys are path elements: ``f:<name>`` a map
field, ``k:{"name":"c"}`` the element of a keyed list (``x-kubernetes-list-type: map``),
``v:"value"`` the element of a set (``list-type: set``), and ``.`` marking that the node itself
is a member. A set holds every *leaf* and every *list element* an object mentions (as
structured-merge-diff's ``ToFieldSet`` does). `apply.py` computes, compares and stores ownership
with these functions; paths are tuples of those element strings.

Which lists are keyed is a question for a schema: `ListKeys` answers it per dotted field path
(list items add no segment): a tuple of key names for a map list, ``()`` for a set, None when the
list is atomic (owned as one leaf, as every list of a custom resource without list-type is).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

Path = tuple[str, ...]
ListKeys = Callable[[str], tuple[str, ...] | None]
JsonMap = dict[str, Any]


def field_set(
    obj: JsonMap, list_keys: ListKeys, *, skip: frozenset[str] = frozenset()
) -> set[Path]:
    """Every leaf and list element `obj` mentions, except top-level dotted paths in `skip`."""
    return {path for path, _ in walk(obj, list_keys, skip=skip)}


def walk(
    obj: JsonMap, list_keys: ListKeys, *, skip: frozenset[str] = frozenset()
) -> Iterator[tuple[Path, Any]]:
    """(path, value) for each leaf and list element of `obj`, depth first."""
    yield from _walk_map(obj, (), "", list_keys, skip)


def _walk_map(
    obj: JsonMap, path: Path, dotted: str, keys: ListKeys, skip: frozenset[str]
) -> Iterator[tuple[Path, Any]]:
    for name, value in obj.items():
        sub = f"{dotted}.{name}" if dotted else name
        if sub in skip:
            continue
        yield from _walk_value(value, (*path, f"f:{name}"), sub, keys, skip)


def _walk_value(
    value: Any, path: Path, dotted: str, keys: ListKeys, skip: frozenset[str]
) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, dict) and value:
        yield from _walk_map(value, path, dotted, keys, skip)
        return
    list_type = keys(dotted) if isinstance(value, list) else None
    if not isinstance(value, list) or list_type is None or not value:
        yield path, value
        return
    for item in value:
        element = (*path, element_key(item, list_type))
        yield element, item
        if list_type and isinstance(item, dict):
            yield from _walk_map(item, element, dotted, keys, skip)


def element_key(item: Any, list_type: tuple[str, ...]) -> str:
    """The path element naming `item` in a keyed list (``k:``) or a set (``v:``)."""
    if not list_type:
        return "v:" + _compact(item)
    if not isinstance(item, dict):
        raise ValueError(f"an element of a list keyed by {list(list_type)} must be an object")
    return "k:" + _compact({k: item[k] for k in sorted(list_type) if k in item})


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def to_fields_v1(paths: set[Path]) -> JsonMap:
    """The ``fieldsV1`` trie of `paths` (a member node that has children gets ``.``)."""
    trie: JsonMap = {}
    for path in sorted(paths):
        node = trie
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:
        node = trie
        for element in path:
            node = node[element]
        if node:
            node["."] = {}
    return trie


def from_fields_v1(trie: JsonMap, prefix: Path = ()) -> set[Path]:
    """The set of paths a ``fieldsV1`` trie holds."""
    paths: set[Path] = set()
    for element, child in trie.items():
        if element == ".":
            paths.add(prefix)
        elif not child:
            paths.add((*prefix, element))
        else:
            paths |= from_fields_v1(child, (*prefix, element))
    return paths


def value_at(obj: Any, path: Path) -> tuple[bool, Any]:
    """(found, value) at `path` in `obj`."""
    node = obj
    for element in path:
        found, node = _step(node, element)
        if not found:
            return False, None
    return True, node


def remove(obj: JsonMap, path: Path) -> None:
    """Delete the field or list element at `path` from `obj` in place (absent: nothing to do)."""
    found, parent = value_at(obj, path[:-1])
    element = path[-1]
    if not found:
        return
    if element.startswith("f:") and isinstance(parent, dict):
        parent.pop(element[2:], None)
    elif isinstance(parent, list):
        parent[:] = [item for item in parent if not _matches(item, element)]


def _step(node: Any, element: str) -> tuple[bool, Any]:
    if element.startswith("f:") and isinstance(node, dict):
        name = element[2:]
        return (name in node), node.get(name)
    if isinstance(node, list):
        for item in node:
            if _matches(item, element):
                return True, item
    return False, None


def _matches(item: Any, element: str) -> bool:
    if element.startswith("v:"):
        return bool(_compact(item) == element[2:])
    if element.startswith("k:") and isinstance(item, dict):
        wanted = json.loads(element[2:])
        return all(item.get(k) == v for k, v in wanted.items())
    return False


def describe(path: Path) -> str:
    """A path as the API server names it in a conflict: ``.spec.containers[name="c"].image``."""
    text = ""
    for element in path:
        kind, rest = element[:2], element[2:]
        if kind == "f:":
            text += f".{rest}"
        elif kind == "k:":
            pairs = ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(rest).items())
            text += f"[{pairs}]"
        else:
            text += f"[={rest}]"
    return text
