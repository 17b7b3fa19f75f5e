"""Server-side field validation of built-in kinds: ``fieldValidation=Strict|Warn|Ignore``.

The real API server decodes a body into the kind's Go struct, so a field the struct does not
have can never be stored. What it does about one depends on the request's ``fieldValidation``
(GA since 1.27; kubectl sends ``Strict`` once the server's OpenAPI declares the parameter):

* ``Strict``: 400 BadRequest, ``Pod in version "v1" cannot be handled as a Pod: strict decoding
  error: unknown field "spec.containers[0].imagee"`` (every unknown field, comma-separated);
* ``Warn`` (the default when the parameter is absent): the field is dropped and each one is
  reported in a ``Warning: 299 - "unknown field \\"...\\""`` response header;
* ``Ignore``: the field is dropped silently.

Unknown means "not in the kind's OpenAPI schema": the schemas are Kubernetes' own, read by
`k8sschemas` from ``kubernetes-validate``, walked through ``properties``, maps
(``additionalProperties``) and list ``items`` with paths spelled as the server spells them.
A custom resource is checked against its CRD's structural schema (an object node without
``properties``, ``additionalProperties`` or ``x-kubernetes-preserve-unknown-fields`` admits no
field, as pruning sees it) plus ``metadata`` against ObjectMeta; the fields are then dropped by
the CRD admission's pruning (`crschema`), so here they are only reported. When
``kubernetes-validate`` is absent no built-in field is known to be unknown and nothing is
dropped. Duplicate JSON keys, which the real decoder also reports, are not detected.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trainguard.testing.kube import apply, k8sschemas
from trainguard.testing.kube.apierrors import ApiError, bad_request
from trainguard.testing.kube.resources import ResourceType

JsonMap = dict[str, Any]
STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"
_REF = "#/components/schemas/"


@dataclass
class FieldValidation:
    """One request's directive, and the warnings a ``Warn`` request collects for its answer."""

    mode: str = WARN
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, value: str | None) -> FieldValidation:
        """From the ``fieldValidation`` query value; absent means ``Warn``, as on the server."""
        if not value:
            return cls()
        if value not in (STRICT, WARN, IGNORE):
            raise bad_request(
                f'fieldValidation: Unsupported value: "{value}": supported values: '
                f'"{IGNORE}", "{STRICT}", "{WARN}"'
            )
        return cls(value)

    def decode(self, rtype: ResourceType, obj: JsonMap) -> JsonMap:
        """``obj`` as the server decodes it for ``rtype``: unknown fields refused or dropped.

        Raises:
            ApiError: 400 naming every unknown field, for ``Strict``.
        """
        unknown: list[str] = []
        if rtype.custom:
            decoded = obj if self.mode == IGNORE else _custom_unknown(rtype, obj, unknown)
        else:
            schema = kind_schema(rtype.group, rtype.version, rtype.kind)
            decoded = obj if schema is None else _walk(schema, obj, "", unknown)
        if not unknown:
            return obj
        if self.mode == STRICT:
            listed = ", ".join(f'unknown field "{path}"' for path in unknown)
            raise bad_request(
                f'{rtype.kind} in version "{rtype.version}" cannot be handled as a '
                f"{rtype.kind}: strict decoding error: {listed}"
            )
        if self.mode == WARN:
            self.warnings.extend(f'unknown field "{path}"' for path in unknown)
        assert isinstance(decoded, dict)
        return decoded

    def check_apply(self, rtype: ResourceType, config: JsonMap) -> None:
        """Refuse a server-side apply configuration with fields the schema does not declare.

        Structured-merge-diff converts the configuration to its typed form before anything
        else and fails there whatever ``fieldValidation`` says; the real server answers 500
        ``failed to create typed patch object (ns/name; group/version, Kind=K): .path: field
        not declared in schema``, list elements named by their keys (``[name="c"]``).

        Raises:
            ApiError: 500 naming the first unknown field.
        """
        unknown: list[str] = []
        label = _smd_label(apply.list_keys_for(rtype.kind, _crd_keys(rtype)))
        body = {k: v for k, v in config.items() if k not in ("apiVersion", "kind")}
        schema = (
            rtype.schema if rtype.custom else kind_schema(rtype.group, rtype.version, rtype.kind)
        )
        if schema is None:
            return
        if rtype.custom:
            body.pop("metadata", None)
        _walk(schema, body, "", unknown, structural=rtype.custom, label=label)
        if unknown:
            meta = config.get("metadata") or {}
            identity = (
                f"{meta.get('namespace', '')}/{meta.get('name', '')}; "
                f"{rtype.group}/{rtype.version}, Kind={rtype.kind}"
            )
            raise ApiError(
                500,
                "InternalError",
                f"failed to create typed patch object ({identity}): "
                f".{unknown[0]}: field not declared in schema",
            )

    def warning_headers(self) -> list[str]:
        """The ``Warning`` header values (RFC 7234 code 299, the text quoted)."""
        return [f"299 - {json.dumps(text)}" for text in self.warnings]


@functools.cache
def _by_kind() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in k8sschemas.definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            index.setdefault((gvk.get("group", ""), gvk["version"], gvk["kind"]), name)
    return index


def kind_schema(group: str, version: str, kind: str) -> JsonMap | None:
    """Kubernetes' schema of a built-in kind, or None when it is not known."""
    name = _by_kind().get((group, version, kind))
    return k8sschemas.definitions().get(name) if name else None


def _resolve(schema: JsonMap) -> JsonMap:
    """Follow ``allOf: [{$ref}]`` (how the definitions reference each other) to the target."""
    while True:
        refs = [part["$ref"] for part in schema.get("allOf") or () if "$ref" in part]
        if not refs:
            return schema
        target = k8sschemas.definitions().get(refs[0].removeprefix(_REF))
        if target is None:
            return {}
        schema = {**target, **{k: v for k, v in schema.items() if k != "allOf"}}


_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_EMBEDDED_KEYS = ("apiVersion", "kind", "metadata")


def _custom_unknown(rtype: ResourceType, obj: JsonMap, unknown: list[str]) -> JsonMap:
    """Report a custom resource's unknown fields (its CRD admission prunes them later)."""
    meta_schema = k8sschemas.definitions().get(_OBJECT_META)
    if meta_schema is not None and isinstance(obj.get("metadata"), dict):
        _walk(meta_schema, obj["metadata"], "metadata", unknown)
    body = {k: v for k, v in obj.items() if k not in _EMBEDDED_KEYS}
    if rtype.schema is not None:
        _walk(rtype.schema, body, "", unknown, structural=True)
    return obj


ElementLabel = Callable[[str, int, Any], str]
"""``(dotted field path, index, element) -> "[...]"``: how a list element is named in a path."""


def _index(_dotted: str, index: int, _item: Any) -> str:
    return f"[{index}]"


def _walk(
    schema: JsonMap,
    value: Any,
    path: str,
    unknown: list[str],
    *,
    structural: bool = False,
    dotted: str = "",
    label: ElementLabel = _index,
) -> Any:
    """``value`` without the fields ``schema`` does not declare; their paths go to ``unknown``.

    ``structural`` (a CRD schema): an object node that declares nothing admits nothing.
    ``dotted`` is the field path without list elements, which ``label`` names.
    """
    schema = _resolve(schema)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return value

    def walk(node: JsonMap, item: Any, at: str, field: str) -> Any:
        return _walk(node, item, at, unknown, structural=structural, dotted=field, label=label)

    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [
            walk(schema["items"], item, path + label(dotted, i, item), dotted)
            for i, item in enumerate(value)
        ]
    if not isinstance(value, dict):
        return value
    properties = schema.get("properties")
    entries = schema.get("additionalProperties")
    if isinstance(entries, dict):
        return {k: walk(entries, v, _join(path, k), _join(dotted, k)) for k, v in value.items()}
    if not isinstance(properties, dict) and (entries is True or not structural):
        return value
    known = properties if isinstance(properties, dict) else {}
    embedded = structural and schema.get("x-kubernetes-embedded-resource")
    kept: JsonMap = {}
    for key, item in value.items():
        child = _join(path, key)
        if key in known:
            kept[key] = walk(known[key], item, child, _join(dotted, key))
        elif embedded and key in _EMBEDDED_KEYS:
            kept[key] = item
        else:
            unknown.append(child)
    return kept


def _crd_keys(rtype: ResourceType) -> Callable[[str], tuple[str, ...] | None] | None:
    return apply.schema_list_keys(rtype.schema) if rtype.custom else None


def _smd_label(keys: Callable[[str], tuple[str, ...] | None]) -> ElementLabel:
    """List elements named as structured-merge-diff names them in a path."""

    def label(dotted: str, index: int, item: Any) -> str:
        list_keys = keys(dotted)
        if list_keys and isinstance(item, dict):
            pairs = ",".join(f"{k}={json.dumps(item.get(k))}" for k in list_keys)
            return f"[{pairs}]"
        if list_keys == ():
            return f"[={json.dumps(item)}]"
        return f"[{index}]"

    return label


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
