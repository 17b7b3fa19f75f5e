"""The CustomResourceDefinition for ``hyperpodpytorchjobs.sagemaker.amazonaws.com``.

HyperPod does not publish its CRD, so clusters without HyperPod need ours; it is generated from
the same pydantic models that validate manifests, so the API server and ``trainguard validate``
can never disagree on a field. Pydantic emits JSON Schema; an ``apiextensions.k8s.io/v1`` API
server accepts only a *structural* OpenAPI v3 schema: every node typed (or marked
``x-kubernetes-int-or-string`` / ``x-kubernetes-preserve-unknown-fields``), no ``$ref``, no
unions of types, ``nullable`` instead of null unions, boolean ``exclusiveMinimum``. `structural`
does that translation and refuses (``ValueError``) a model shape it cannot express, so a model
change that would break the CRD fails in the unit tests, not on a cluster.

What the schema alone cannot say (unique names, fields that go together) is written as CEL rules
(``x-kubernetes-validations``), checked by the API server itself: no admission webhook and no
cert-manager to install. The rules mirror `trainguard.spec.semantics`; the lists they iterate
carry ``maxItems`` so the API server's CEL cost estimate stays small.
"""

from __future__ import annotations

from typing import Any, Final

from trainguard import constants as c
from trainguard.spec.job import JobSpec
from trainguard.spec.limits import GENERATED_SUFFIX_LENGTH, MAX_NAME_LENGTH
from trainguard.spec.status import JobStatus

PRESERVE: Final = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING: Final = "x-kubernetes-int-or-string"
VALIDATIONS: Final = "x-kubernetes-validations"

_KEPT_KEYS: Final = frozenset(
    {
        "type",
        "description",
        "required",
        "enum",
        "default",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "nullable",
        PRESERVE,
        INT_OR_STRING,
    }
)
"""JSON Schema keywords that mean the same in OpenAPI v3 and are allowed in a structural schema;
everything else pydantic writes (``title``, ``$defs``, ...) is dropped or translated."""

_INT_OR_STRING_BRANCHES: Final = [{"type": "integer"}, {"type": "string"}]

_RULES: Final[dict[str, list[dict[str, str]]]] = {
    "spec": [
        {
            "rule": "!has(self.elasticPolicy) || size(self.replicaSpecs) == 1",
            "message": "an elastic job has exactly one replica spec",
            "fieldPath": ".replicaSpecs",
        }
    ],
    "spec.replicaSpecs": [
        {
            "rule": "self.all(r, self.exists_one(o, o.name == r.name))",
            "message": "replica spec names must be unique",
        }
    ],
    "spec.replicaSpecs[]": [
        {
            "rule": "!has(self.maxReplicas) || "
            "self.maxReplicas >= (has(self.replicas) ? self.replicas : 1)",
            "message": "maxReplicas must be at least replicas",
            "fieldPath": ".maxReplicas",
        }
    ],
    "spec.runPolicy.logMonitoringConfiguration": [
        {
            "rule": "self.all(r, self.exists_one(o, o.name == r.name))",
            "message": "log monitoring rule names must be unique",
        }
    ],
    "spec.runPolicy.logMonitoringConfiguration[]": [
        {
            "rule": "!has(self.metricThreshold) || has(self.operator)",
            "message": "operator is required when metricThreshold is set",
            "fieldPath": ".operator",
        },
        {
            "rule": "!has(self.operator) || has(self.metricThreshold)",
            "message": "metricThreshold is required when operator is set",
            "fieldPath": ".metricThreshold",
        },
    ],
    "spec.elasticPolicy": [
        {
            "rule": "!has(self.minReplicas) || !has(self.maxReplicas) || "
            "self.minReplicas <= self.maxReplicas",
            "message": "minReplicas must not exceed maxReplicas",
            "fieldPath": ".minReplicas",
        },
        {
            "rule": "!has(self.replicaIncrementStep) || !has(self.replicaDiscreteValues)",
            "message": "set replicaIncrementStep or replicaDiscreteValues, not both",
            "fieldPath": ".replicaDiscreteValues",
        },
        {
            "rule": "!has(self.replicaDiscreteValues) || self.replicaDiscreteValues.all(v, "
            "(!has(self.minReplicas) || v >= self.minReplicas) && "
            "(!has(self.maxReplicas) || v <= self.maxReplicas))",
            "message": "replicaDiscreteValues must lie within minReplicas..maxReplicas",
            "fieldPath": ".replicaDiscreteValues",
        },
    ],
}
"""CEL rules by schema path (``[]`` = each item of the list), mirroring spec/semantics.py."""


def crd() -> dict[str, Any]:
    """The CRD manifest (``apiextensions.k8s.io/v1``)."""
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
                    "schema": {"openAPIV3Schema": open_api_schema()},
                }
            ],
        },
    }


def open_api_schema() -> dict[str, Any]:
    """The structural ``openAPIV3Schema`` of the custom resource, CEL rules included."""
    schema: dict[str, Any] = {
        "type": "object",
        "description": "A distributed PyTorch training job with HyperPod's restart semantics.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": _root_metadata(),
            "spec": structural(JobSpec.model_json_schema(by_alias=True)),
            "status": _status_schema(),
        },
        "required": ["spec"],
    }
    for path, rules in _RULES.items():
        schema_at(schema, path)[VALIDATIONS] = [dict(rule) for rule in rules]
    return schema


def _status_schema() -> dict[str, Any]:
    """``status``: `JobStatus`, ``observedGeneration``, and the controller's bookkeeping under
    ``trainguard`` (kept whole: the Kubernetes store resumes a job from it)."""
    status = structural(JobStatus.model_json_schema(by_alias=True))
    status["properties"]["observedGeneration"] = {"type": "integer", "format": "int64"}
    status["properties"]["trainguard"] = {
        "type": "object",
        "description": "The controller's own state of the job (phase, restart history...).",
        PRESERVE: True,
    }
    return status


def schema_at(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """The node of ``schema`` at a dotted path; ``name[]`` steps into the list's items."""
    node = schema
    for part in path.split("."):
        node = node["properties"][part.removesuffix("[]")]
        if part.endswith("[]"):
            node = node["items"]
    return node


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """Translate pydantic's JSON Schema into a Kubernetes structural schema.

    Raises:
        ValueError: the schema holds a union Kubernetes cannot express (e.g. int | list).
    """
    return _convert(schema, schema.get("$defs", {}))


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        return _convert({**target, **{k: v for k, v in node.items() if k != "$ref"}}, defs)
    if "anyOf" in node:
        return _convert_union(node, defs)
    out = {k: v for k, v in node.items() if k in _KEPT_KEYS}
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {k: _convert(v, defs) for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = _convert(node["items"], defs)
    _convert_additional(node, out, defs)
    _convert_bounds(node, out)
    if isinstance(out.get("description"), str):
        out["description"] = out["description"].replace("``", "")
    if "type" not in out and "enum" in out:
        out["type"] = "string"
    if "type" not in out and not out.get(INT_OR_STRING):
        out[PRESERVE] = True  # a field of any shape (pydantic's ``Any``)
    if out.get("default", 0) is None:
        del out["default"]
    return out


def _convert_additional(node: dict[str, Any], out: dict[str, Any], defs: dict[str, Any]) -> None:
    """``additionalProperties: true`` keeps unknown keys; a schema there types a map's values."""
    extra = node.get("additionalProperties")
    if extra is True:
        out["type"] = "object"
        out[PRESERVE] = True
    elif isinstance(extra, dict):
        out["type"] = "object"
        out["additionalProperties"] = _convert(extra, defs)


def _convert_bounds(node: dict[str, Any], out: dict[str, Any]) -> None:
    """JSON Schema's numeric ``exclusiveMinimum: x`` is OpenAPI v3's boolean form."""
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
            out[plain] = node[bound]
            out[bound] = True


def _convert_union(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    options = [o for o in node["anyOf"] if o.get("type") != "null"]
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    if node.get(INT_OR_STRING) or _is_int_or_string(options):
        merged = _convert({k: v for k, v in rest.items() if k != "type"}, defs)
        merged[INT_OR_STRING] = True
        merged["anyOf"] = [dict(branch) for branch in _INT_OR_STRING_BRANCHES]
        merged.pop(PRESERVE, None)
    elif len(options) == 1:
        merged = _convert({**options[0], **rest}, defs)
    else:
        raise ValueError(f"a structural schema cannot hold the union {node['anyOf']}")
    if len(options) < len(node["anyOf"]):
        merged["nullable"] = True
    return merged


def _is_int_or_string(options: list[dict[str, Any]]) -> bool:
    return len(options) == 1 and options[0].get(INT_OR_STRING) is True


def _root_metadata() -> dict[str, Any]:
    """At the root an API server allows only restrictions of name and generateName."""
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": MAX_NAME_LENGTH},
            "generateName": {
                "type": "string",
                "maxLength": MAX_NAME_LENGTH - GENERATED_SUFFIX_LENGTH,
            },
        },
    }


def _printer_columns() -> list[dict[str, Any]]:
    return [
        {
            "name": "Status",
            "type": "string",
            "description": "The latest condition: Created, Running, Faulted, Completed, Failed.",
            "jsonPath": ".status.conditions[-1:].type",
        },
        {
            "name": "Restarts",
            "type": "integer",
            "description": "Restarts of the job's workers so far.",
            "jsonPath": ".status.restartCount",
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
