"""The structural-schema rules an ``apiextensions.k8s.io/v1`` API server enforces on a CRD.

`kubernetes-validate` checks a CRD against the published JSON schema of the CRD object, which
cannot see these rules: they are code in the API server (apiextensions-apiserver's
``structural`` package and ``ValidateCustomResourceDefinitionOpenAPISchema``). A CRD that breaks
them is refused at ``kubectl apply`` with ``spec.validation.openAPIV3Schema...: Required value:
must not be empty for specified object fields`` and friends. The checks here follow
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
#specifying-a-structural-schema, made stricter where trainguard never needs the freedom (no
``allOf``/``oneOf``/``not``; ``anyOf`` only as the int-or-string pattern).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema

PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
VALIDATIONS = "x-kubernetes-validations"
INT_OR_STRING_PATTERN = [{"type": "integer"}, {"type": "string"}]
TYPES = {"object", "array", "string", "integer", "number", "boolean"}
FORBIDDEN = {
    "$ref", "$schema", "$defs", "definitions", "dependencies", "additionalItems",
    "patternProperties", "id", "allOf", "oneOf", "not", "x-kubernetes-embedded-resource",
}  # fmt: skip
ROOT_META_KEYS = {"name", "generateName"}


def walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with a readable path: ``.a.b[items]``, ``[additionalProperties]``."""
    if not isinstance(node, dict):
        return
    yield path, node
    for key, value in node.get("properties", {}).items():
        yield from walk(value, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from walk(node[key], f"{path}[{key}]")


def structural_errors(schema: dict[str, Any]) -> list[str]:
    """Every broken rule, as ``path: complaint``; empty for a schema an API server accepts."""
    errors = [f"{path or '<root>'}: {e}" for path, node in walk(schema) for e in _node(node)]
    errors += [f".metadata: {e}" for e in _root_metadata(schema)]
    return errors


def _node(node: dict[str, Any]) -> Iterator[str]:
    yield from (f"forbidden keyword {key}" for key in FORBIDDEN & node.keys())
    yield from _typed(node)
    yield from _extensions(node)
    yield from _shape(node)
    yield from _default(node)
    yield from _cel(node)


def _typed(node: dict[str, Any]) -> Iterator[str]:
    kind = node.get("type")
    if kind is None and not node.get(PRESERVE) and not node.get(INT_OR_STRING):
        yield "no type (and neither preserve-unknown-fields nor int-or-string)"
    if kind is not None and kind not in TYPES:
        yield f"type {kind!r} is not one of {sorted(TYPES)}"
    if node.get(INT_OR_STRING) and kind is not None:
        yield "int-or-string must not have a type"
    if "anyOf" in node and not (node.get(INT_OR_STRING) and node["anyOf"] == INT_OR_STRING_PATTERN):
        yield "anyOf is allowed only as the int-or-string pattern [integer, string]"


def _extensions(node: dict[str, Any]) -> Iterator[str]:
    for key in node.get("properties", {}):
        if key.startswith("x-kubernetes-"):
            yield f"extension {key} used as a property named {key!r}"
    for key in (PRESERVE, INT_OR_STRING):
        if key in node and node[key] is not True:
            yield f"{key} must be true when present"
    if node.get(PRESERVE) and node.get("type") not in (None, "object"):
        yield f"{PRESERVE} beside type {node['type']!r} (only objects keep unknown fields)"


def _shape(node: dict[str, Any]) -> Iterator[str]:
    if ("properties" in node or "additionalProperties" in node) and node.get("type") != "object":
        yield "properties or additionalProperties without type: object"
    if "properties" in node and "additionalProperties" in node:
        yield "properties and additionalProperties are mutually exclusive"
    if isinstance(node.get("additionalProperties"), bool):
        yield "additionalProperties must be a schema, not a boolean"
    if node.get("type") == "array" and not isinstance(node.get("items"), dict):
        yield "an array needs one items schema"
    if node.get("uniqueItems") is True:
        yield "uniqueItems: true is refused (quadratic)"
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in node and not isinstance(node[bound], bool):
            yield f"{bound} must be a boolean in OpenAPI v3"
    missing = set(node.get("required", [])) - set(node.get("properties", {}))
    if missing:
        yield f"required names unknown properties {sorted(missing)}"


def _default(node: dict[str, Any]) -> Iterator[str]:
    if "default" not in node:
        return
    checker = jsonschema.Draft202012Validator(to_json_schema(node))
    for error in checker.iter_errors(node["default"]):
        yield f"default {node['default']!r} does not satisfy its own schema: {error.message}"


def _cel(node: dict[str, Any]) -> Iterator[str]:
    """Rules are cheap only over bounded lists of bounded strings (the API server's cost check)."""
    for rule in node.get(VALIDATIONS, []):
        if not rule.get("rule") or not rule.get("message"):
            yield "a validation needs a rule and a message"
        field = rule.get("fieldPath", "").removeprefix(".")
        if field and field not in node.get("properties", {}):
            yield f"fieldPath {rule['fieldPath']!r} names no field of this node"
        if node.get("type") == "array" and "maxItems" not in node:
            yield f"CEL rule {rule['rule']!r} iterates a list without maxItems"
        if node.get("type") == "array" and ".name" in rule["rule"]:
            name = node["items"].get("properties", {}).get("name", {})
            if "maxLength" not in name:
                yield f"CEL rule {rule['rule']!r} compares names without maxLength"


def _root_metadata(schema: dict[str, Any]) -> Iterator[str]:
    meta = schema.get("properties", {}).get("metadata")
    if meta is None:
        return
    if set(meta) - {"type", "properties"} or meta.get("type") != "object":
        yield "only type: object and properties are allowed on the root metadata"
    for key in set(meta.get("properties", {})) - ROOT_META_KEYS:
        yield f"only name and generateName may be restricted, not {key}"


def to_json_schema(node: Any) -> Any:
    """OpenAPI v3 -> JSON Schema so jsonschema can check documents: nullable, exclusive bounds."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if "properties" in node:
        out["properties"] = {k: to_json_schema(v) for k, v in node["properties"].items()}
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if out.get(bound) is True:
            out[bound] = out.pop(plain)
    if out.pop("nullable", False):
        return _nullable(out)
    return out


def _nullable(out: dict[str, Any]) -> dict[str, Any]:
    """Null allowed; typed nodes keep their keywords at the top so errors name the field."""
    if "type" not in out:
        return {"anyOf": [out, {"type": "null"}]}
    out["type"] = [out["type"], "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out
