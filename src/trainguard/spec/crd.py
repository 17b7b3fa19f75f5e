"""The CustomResourceDefinition for ``hyperpodpytorchjobs.sagemaker.amazonaws.com``.

HyperPod does not publish its CRD, so clusters without HyperPod need ours; it is generated from
the same pydantic models that validate manifests, so the API server and ``trainguard validate``
can never disagree on a field. Pydantic emits JSON Schema; Kubernetes wants a *structural*
OpenAPI v3 schema (no ``$ref``, ``nullable`` instead of null unions, unknown fields declared with
``x-kubernetes-preserve-unknown-fields``). `structural` does that translation.
"""

from __future__ import annotations

from typing import Any

from trainguard import constants as c
from trainguard.spec.job import JobSpec
from trainguard.spec.status import JobStatus

_DROP_KEYS = {"title", "$defs"}


def crd() -> dict[str, Any]:
    """The CRD manifest (``apiextensions.k8s.io/v1``)."""
    schema = {
        "type": "object",
        "description": "A distributed PyTorch training job with HyperPod's restart semantics.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": structural(JobSpec.model_json_schema(by_alias=True)),
            "status": structural(JobStatus.model_json_schema(by_alias=True)),
        },
        "required": ["spec"],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": c.CRD_NAME},
        "spec": {
            "group": c.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": c.KIND,
                "listKind": f"{c.KIND}List",
                "plural": c.PLURAL,
                "singular": c.SINGULAR,
                "shortNames": list(c.SHORT_NAMES),
            },
            "versions": [
                {
                    "name": c.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _printer_columns(),
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """Translate pydantic's JSON Schema into a Kubernetes structural schema."""
    converted: dict[str, Any] = _convert(schema, schema.get("$defs", {}))
    return converted


def _convert(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _convert({**target, **extra}, defs)
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        return _convert_union(node, defs)
    out = {k: _convert(v, defs) for k, v in node.items() if k not in _DROP_KEYS}
    if isinstance(out.get("description"), str):
        out["description"] = out["description"].replace("``", "")
    if "properties" in out:
        out["type"] = "object"
        if out.pop("additionalProperties", None) is True:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif out.get("additionalProperties") is True:
        out.pop("additionalProperties")
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "type" not in out and not out.get("x-kubernetes-int-or-string") and "enum" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("default") is None:
        out.pop("default", None)
    return out


def _convert_union(node: dict[str, Any], defs: dict[str, Any]) -> Any:
    options = [o for o in node["anyOf"] if o.get("type") != "null"]
    nullable = len(options) < len(node["anyOf"])
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    if len(options) == 1:
        merged = _convert({**options[0], **rest}, defs)
    else:
        merged = _convert({**rest, "x-kubernetes-preserve-unknown-fields": True}, defs)
        merged["anyOf"] = [_convert(o, defs) for o in options]
    if nullable:
        merged["nullable"] = True
    return merged


def _printer_columns() -> list[dict[str, Any]]:
    return [
        {"name": "Status", "type": "string", "jsonPath": ".status.conditions[-1:].type"},
        {"name": "Restarts", "type": "integer", "jsonPath": ".status.restartCount"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
