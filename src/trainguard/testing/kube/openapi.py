"""The ``/openapi/v3`` documents kubectl reads from the fake API server.

kubectl 1.37 reads OpenAPI v3 for three things: whether the server validates fields itself (the
PATCH operation of the kind's path declares a ``fieldValidation`` query parameter: then kubectl
sends ``fieldValidation=Strict`` instead of validating client-side), whether client-side
``apply`` may send a strategic merge patch (the PATCH request body lists
``application/strategic-merge-patch+json``; custom resources do not, so kubectl sends a merge
patch) and which patch strategy each field has (``x-kubernetes-patch-strategy``/``-merge-key``),
plus ``kubectl explain``. ``/openapi/v2`` is only its fallback and is not served.

The index ``/openapi/v3`` names one document per group-version (``api/v1``,
``apis/<group>/<version>``), each with the kinds' paths and component schemas: Kubernetes' own
definitions for built-ins (`k8sschemas`; open schemas when ``kubernetes-validate`` is missing) and
a CRD's ``openAPIV3Schema`` for custom resources, with ``metadata`` as ``ObjectMeta``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trainguard.testing.kube import k8sschemas

JsonMap = dict[str, Any]
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
_REF = "#/components/schemas/"


@dataclass(frozen=True)
class ServedKind:
    """One kind as the OpenAPI documents describe it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    definition: str
    """The component schema's name (``io.k8s.api.core.v1.Pod``, ``com.example.v1.Thing``)."""
    schema: JsonMap | None = None
    """A custom resource's ``openAPIV3Schema``; None for built-ins (`k8sschemas` has them)."""
    status: bool = False
    """Whether the kind has a ``/status`` subresource."""

    @property
    def strategic(self) -> bool:
        """Only built-in kinds accept strategic merge patch."""
        return self.schema is None


def _builtin(
    group: str,
    version: str,
    kind: str,
    plural: str,
    package: str,
    *,
    namespaced: bool = True,
    status: bool = False,
) -> ServedKind:
    return ServedKind(group, version, kind, plural, namespaced, f"{package}.{kind}", status=status)


_CORE = "io.k8s.api.core.v1"
_RBAC = "io.k8s.api.rbac.v1"
BUILTIN_KINDS = (
    _builtin("", "v1", "Pod", "pods", _CORE, status=True),
    _builtin("", "v1", "Node", "nodes", _CORE, namespaced=False, status=True),
    _builtin("", "v1", "Namespace", "namespaces", _CORE, namespaced=False, status=True),
    _builtin("", "v1", "Service", "services", _CORE, status=True),
    _builtin("", "v1", "Secret", "secrets", _CORE),
    _builtin("", "v1", "ConfigMap", "configmaps", _CORE),
    _builtin("", "v1", "Event", "events", _CORE),
    _builtin("events.k8s.io", "v1", "Event", "events", "io.k8s.api.events.v1"),
    _builtin("coordination.k8s.io", "v1", "Lease", "leases", "io.k8s.api.coordination.v1"),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1",
        namespaced=False,
        status=True,
    ),
    # stored without controllers (`resources`): what a Helm chart creates
    _builtin("", "v1", "ServiceAccount", "serviceaccounts", _CORE),
    _builtin("apps", "v1", "Deployment", "deployments", "io.k8s.api.apps.v1", status=True),
    _builtin("apps", "v1", "DaemonSet", "daemonsets", "io.k8s.api.apps.v1", status=True),
    _builtin("batch", "v1", "Job", "jobs", "io.k8s.api.batch.v1", status=True),
    _builtin(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "io.k8s.api.policy.v1",
        status=True,
    ),
    *(
        _builtin("rbac.authorization.k8s.io", "v1", kind, plural, _RBAC, namespaced=namespaced)
        for kind, plural, namespaced in (
            ("Role", "roles", True),
            ("RoleBinding", "rolebindings", True),
            ("ClusterRole", "clusterroles", False),
            ("ClusterRoleBinding", "clusterrolebindings", False),
        )
    ),
)
"""The built-in kinds the fake serves."""


def kinds_of_crd(crd: JsonMap) -> list[ServedKind]:
    """The served versions of a CRD as `ServedKind`s."""
    spec = crd.get("spec", {})
    group, names = spec.get("group", ""), spec.get("names", {})
    reversed_group = ".".join(reversed(group.split(".")))
    return [
        ServedKind(
            group,
            v["name"],
            names.get("kind", ""),
            names.get("plural", ""),
            spec.get("scope", "Namespaced") == "Namespaced",
            f"{reversed_group}.{v['name']}.{names.get('kind', '')}",
            schema=(v.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"},
            status="status" in (v.get("subresources") or {}),
        )
        for v in spec.get("versions") or []
        if v.get("served", True)
    ]


def group_version_path(group: str, version: str) -> str:
    """``api/v1`` for the core group, ``apis/<group>/<version>`` otherwise."""
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def document(path: str, kinds: Iterable[ServedKind]) -> JsonMap | None:
    """The document at an ``/openapi/v3[/...]`` request path, or None (404)."""
    served = list(kinds)
    relative = path.split("?", 1)[0].removeprefix("/openapi/v3").strip("/")
    if not relative:
        return index(served)
    members = [k for k in served if group_version_path(k.group, k.version) == relative]
    return group_version_document(members) if members else None


def index(kinds: list[ServedKind]) -> JsonMap:
    """``/openapi/v3``: one entry per group-version, its URL carrying a hash of its content."""
    paths: JsonMap = {}
    for gv in sorted({group_version_path(k.group, k.version) for k in kinds}):
        body = group_version_document(
            [k for k in kinds if group_version_path(k.group, k.version) == gv]
        )
        digest = hashlib.sha512(json.dumps(body, sort_keys=True).encode()).hexdigest().upper()
        paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
    return {"paths": paths}


def group_version_document(kinds: list[ServedKind]) -> JsonMap:
    """The OpenAPI 3 document of one group-version's kinds."""
    paths: JsonMap = {}
    for kind in kinds:
        paths.update(_paths(kind))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": k8sschemas.KUBERNETES_VERSION},
        "paths": paths,
        "components": {"schemas": _schemas(kinds)},
    }


def _schemas(kinds: list[ServedKind]) -> JsonMap:
    builtins = [k.definition for k in kinds if k.schema is None]
    schemas: JsonMap = dict(k8sschemas.closure([*builtins, OBJECT_META]))
    for kind in kinds:
        if kind.schema is not None:
            schemas[kind.definition] = _custom_schema(kind)
        elif kind.definition not in schemas:
            schemas[kind.definition] = {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
            }
        schemas[kind.definition]["x-kubernetes-group-version-kind"] = [_gvk(kind)]
    schemas[PATCH] = {
        "type": "object",
        "description": "The body of a PATCH request.",
    }
    return schemas


def _custom_schema(kind: ServedKind) -> JsonMap:
    schema = json.loads(json.dumps(kind.schema))
    properties = schema.setdefault("properties", {})
    properties["metadata"] = {
        "allOf": [{"$ref": _REF + OBJECT_META}],
        "description": "Standard object's metadata.",
    }
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    return dict(schema)


def _gvk(kind: ServedKind) -> JsonMap:
    return {"group": kind.group, "version": kind.version, "kind": kind.kind}


def _paths(kind: ServedKind) -> JsonMap:
    prefix = "/" + group_version_path(kind.group, kind.version)
    scope = f"{prefix}/namespaces/{{namespace}}" if kind.namespaced else prefix
    collection, item = f"{scope}/{kind.plural}", f"{scope}/{kind.plural}/{{name}}"
    ref = {"$ref": _REF + kind.definition}
    paths = {
        collection: {"get": _operation(kind, "list", ref), "post": _operation(kind, "post", ref)},
        item: {
            "get": _operation(kind, "get", ref),
            "put": _operation(kind, "put", ref),
            "patch": _patch_operation(kind, ref),
            "delete": _operation(kind, "delete", ref),
        },
    }
    if kind.status:
        paths[f"{item}/status"] = {
            "get": _operation(kind, "get", ref),
            "patch": _patch_operation(kind, ref),
        }
    return paths


def _operation(kind: ServedKind, action: str, ref: JsonMap) -> JsonMap:
    operation: JsonMap = {
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(kind),
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": ref}}}
        },
    }
    if action in ("post", "put"):
        operation["parameters"] = _write_parameters()
        operation["requestBody"] = {"content": {"*/*": {"schema": ref}}, "required": True}
    return operation


def _patch_operation(kind: ServedKind, ref: JsonMap) -> JsonMap:
    media = [
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ]
    if kind.strategic:
        media.append("application/strategic-merge-patch+json")
    body = {"schema": {"$ref": _REF + PATCH}}
    operation = _operation(kind, "patch", ref)
    operation["parameters"] = [*_write_parameters(), _query("force", "boolean")]
    operation["requestBody"] = {"content": dict.fromkeys(media, body), "required": True}
    return operation


def _write_parameters() -> list[JsonMap]:
    return [
        _query("dryRun", "string"),
        _query("fieldManager", "string"),
        _query("fieldValidation", "string"),
    ]


def _query(name: str, kind: str) -> JsonMap:
    return {"name": name, "in": "query", "schema": {"type": kind, "uniqueItems": True}}
