"""Kubernetes' own OpenAPI definitions of the built-in kinds, read from ``kubernetes-validate``.

The fake API server publishes ``/openapi/v3`` (`openapi.py`) so kubectl validates with the
server and computes client-side apply patches from ``x-kubernetes-patch-strategy``. Writing
those schemas by hand would drift from Kubernetes; ``kubernetes-validate`` (a test dependency
already used to check our CRD) ships the definitions generated from Kubernetes' OpenAPI document,
patch strategies, list types and group-version-kinds included. This module reads them and turns
its JSON-Schema spelling back into OpenAPI 3: ``"type": ["string", "null"]`` becomes
``"type": "string"``, ``#/$defs/`` references become ``#/components/schemas/``, the int-or-string
``oneOf`` becomes ``x-kubernetes-int-or-string``, and the ``enum`` it adds to ``apiVersion`` and
``kind`` is dropped. When the package is absent, `definitions` is empty and `openapi.py` publishes
open schemas instead (said in its docstring).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from typing import Any

JsonMap = dict[str, Any]

KUBERNETES_VERSION = "v1.37.0"
_DEFS = "#/$defs/"
_COMPONENTS = "#/components/schemas/"


@functools.cache
def definitions() -> dict[str, JsonMap]:
    """Every definition by name (``io.k8s.api.core.v1.Pod``) in OpenAPI 3 form; {} if absent."""
    try:
        root = importlib.resources.files("kubernetes_validate")
    except ModuleNotFoundError:
        return {}
    source = root / "kubernetes-json-schema" / f"{KUBERNETES_VERSION}-local" / "_definitions.json"
    if not source.is_file():
        return {}
    raw = json.loads(source.read_text(encoding="utf-8"))["$defs"]
    return {name: to_openapi(schema) for name, schema in raw.items()}


def closure(names: list[str]) -> dict[str, JsonMap]:
    """The definitions `names` need, following every reference."""
    known = definitions()
    found: dict[str, JsonMap] = {}
    pending = [n for n in names if n in known]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found[name] = known[name]
        pending.extend(r for r in _references(known[name]) if r in known and r not in found)
    return found


def to_openapi(schema: Any) -> Any:
    """One JSON-Schema node of kubernetes-validate as the OpenAPI 3 node Kubernetes publishes."""
    if isinstance(schema, list):
        return [to_openapi(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if _is_int_or_string(schema):
        return {"type": "string", "format": "int-or-string", "x-kubernetes-int-or-string": True}
    converted: JsonMap = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str):
            converted["allOf"] = [{"$ref": value.replace(_DEFS, _COMPONENTS)}]
        elif key == "type" and isinstance(value, list):
            converted["type"] = next((t for t in value if t != "null"), "object")
        elif key == "properties":
            converted[key] = {name: _property(prop, name) for name, prop in value.items()}
        else:
            converted[key] = to_openapi(value)
    return converted


def _property(prop: JsonMap, name: str) -> Any:
    converted = to_openapi(prop)
    if name in ("apiVersion", "kind") and isinstance(converted, dict):
        converted.pop("enum", None)
    return converted


def _is_int_or_string(schema: JsonMap) -> bool:
    options = schema.get("oneOf")
    if not isinstance(options, list) or len(options) != 2:
        return False
    kinds = {str(o.get("type")) for o in options if isinstance(o, dict)}
    return kinds == {"['string', 'null']", "['integer', 'null']"}


def _references(schema: Any) -> list[str]:
    if isinstance(schema, list):
        return [r for item in schema for r in _references(item)]
    if not isinstance(schema, dict):
        return []
    found = []
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str):
            found.append(value.removeprefix(_COMPONENTS))
        else:
            found.extend(_references(value))
    return found
