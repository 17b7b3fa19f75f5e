"""Custom resource bodies checked as apiextensions does: prune, default, validate, CEL.

The API server treats a CRD's ``openAPIV3Schema`` as structural: unknown fields are dropped
(unless ``x-kubernetes-preserve-unknown-fields``), ``default`` values filled in, then the value
validated (types, required, enums, patterns, bounds) and each ``x-kubernetes-validations``
CEL rule evaluated with ``self`` bound to its node. Errors name the field path the way the
real server does (``spec.replicaSpecs[0].replicas``), in a 422 Invalid.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from typing import Any

import celpy
import jsonschema
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
VALIDATIONS = "x-kubernetes-validations"
_ROOT_KEYS = ("apiVersion", "kind", "metadata")

_CEL = celpy.Environment()


def prune(schema: dict[str, Any], value: Any) -> Any:
    """``value`` with the fields the schema does not know removed and defaults filled in."""
    if isinstance(value, dict):
        return _prune_object(schema, value)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(schema["items"], item) for item in value]
    return value


def _prune_object(schema: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    additional = schema.get("additionalProperties")
    result: dict[str, Any] = {}
    for key, sub in value.items():
        if key in properties:
            result[key] = prune(properties[key], sub)
        elif isinstance(additional, dict):
            result[key] = prune(additional, sub)
        elif schema.get(PRESERVE) or additional is True:
            result[key] = sub
    for key, sub_schema in properties.items():
        if key not in result and "default" in sub_schema:
            result[key] = prune(sub_schema, copy.deepcopy(sub_schema["default"]))
    return result


def prune_resource(schema: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """Prune a whole custom resource; apiVersion, kind and metadata are always kept."""
    body = {k: v for k, v in obj.items() if k not in _ROOT_KEYS}
    pruned = prune(schema, body)
    return {**{k: obj[k] for k in _ROOT_KEYS if k in obj}, **pruned}


def to_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI v3 (structural) to JSON Schema: ``nullable`` and int-or-string made explicit."""
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            converted[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            converted[key] = to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            converted[key] = [to_json_schema(v) for v in value]
        elif key == "not":
            converted[key] = to_json_schema(value)
        elif not key.startswith("x-kubernetes-") and key not in ("nullable", "default", "format"):
            converted[key] = value
    if schema.get(INT_OR_STRING):
        converted.pop("type", None)
        converted["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    return converted


def _path(parts: Any) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".")


def _schema_errors(schema: dict[str, Any], body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    validator = jsonschema.Draft202012Validator(_json_schema_cached(_freeze(schema)))
    for error in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path))):
        path = _path(error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1]
            yield (f"{path}.{missing}".lstrip("."), "Required value")
        else:
            yield (path or "<root>", f"Invalid value: {error.instance!r}: {error.message}")


@functools.lru_cache(maxsize=64)
def _json_schema_cached(frozen: str) -> dict[str, Any]:
    converted: dict[str, Any] = to_json_schema(json.loads(frozen))
    return converted


def _freeze(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True)


@functools.lru_cache(maxsize=256)
def _cel_program(rule: str) -> Any:
    return _CEL.program(_CEL.compile(rule))


def _cel_errors(schema: dict[str, Any], value: Any, path: str) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    for rule in schema.get(VALIDATIONS, []):
        try:
            passed = _cel_program(rule["rule"]).evaluate({"self": json_to_cel(value)})
        except CELEvalError as exc:
            yield (
                path + rule.get("fieldPath", ""),
                f"Invalid value: rule {rule['rule']!r} failed: {exc}",
            )
            continue
        if not passed:
            message = rule.get("message") or f"failed rule: {rule['rule']}"
            yield ((path + rule.get("fieldPath", "")).lstrip("."), f"Invalid value: {message}")
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            yield from _cel_errors(sub, value.get(key), f"{path}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _cel_errors(schema["items"], item, f"{path}[{index}]")


def validation_errors(schema: dict[str, Any], obj: dict[str, Any]) -> list[tuple[str, str]]:
    """``(field path, message)`` for each way ``obj`` breaks the schema or its CEL rules."""
    body = {k: v for k, v in obj.items() if k not in _ROOT_KEYS}
    errors = list(_schema_errors(schema, body))
    if not errors:
        errors = [(p.lstrip("."), m) for p, m in _cel_errors(schema, body, "")]
    return errors
