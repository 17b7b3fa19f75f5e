"""CustomResourceDefinitions: creating one serves a new resource, as apiextensions does.

`CrdController` plugs into `KubeApi` twice: as admission it checks CRD bodies (the fields the
real server requires, ``metadata.name == <plural>.<group>``) and validates custom resources
against their version's schema (`crschema`); after a CRD is written it registers each served
version (kind, names, scope, status subresource, printer columns) and marks the CRD
``Established``; after a CRD is deleted it stops serving it and removes its objects.
"""

from __future__ import annotations

from typing import Any

from trainguard.testing.kube import crschema
from trainguard.testing.kube.api import KubeApi
from trainguard.testing.kube.apierrors import invalid
from trainguard.testing.kube.objects import now_rfc3339
from trainguard.testing.kube.resources import ResourceType

CRD_KEY = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
_REQUIRED = ("spec.group", "spec.names.plural", "spec.names.kind", "spec.scope", "spec.versions")


def _lookup(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def crd_errors(crd: dict[str, Any]) -> list[tuple[str, str]]:
    """The ways a CRD body is invalid, as ``(field, message)``."""
    errors = [(path, "Required value") for path in _REQUIRED if not _lookup(crd, path)]
    if errors:
        return errors
    spec = crd["spec"]
    expected = f"{spec['names']['plural']}.{spec['group']}"
    if crd["metadata"]["name"] != expected:
        errors.append(
            (
                "metadata.name",
                f"Invalid value: {crd['metadata']['name']!r}: "
                'must be spec.names.plural+"."+spec.group',
            )
        )
    if spec["scope"] not in ("Namespaced", "Cluster"):
        errors.append(
            (
                "spec.scope",
                f'Unsupported value: {spec["scope"]!r}: supported values: "Cluster", "Namespaced"',
            )
        )
    if sum(1 for v in spec["versions"] if v.get("storage")) != 1:
        errors.append(
            (
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    for index, version in enumerate(spec["versions"]):
        if not _lookup(version, "schema.openAPIV3Schema"):
            errors.append(
                (
                    f"spec.versions[{index}].schema.openAPIV3Schema",
                    "Required value: schemas are required",
                )
            )
    return errors


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One `ResourceType` per served version of ``crd``."""
    spec = crd["spec"]
    names = spec["names"]
    return [
        ResourceType(
            group=spec["group"],
            version=version["name"],
            resource=names["plural"],
            kind=names["kind"],
            namespaced=spec["scope"] == "Namespaced",
            singular=names.get("singular", names["kind"].lower()),
            short_names=tuple(names.get("shortNames", [])),
            categories=tuple(names.get("categories", [])),
            has_status="status" in (version.get("subresources") or {}),
            printer_columns=tuple(version.get("additionalPrinterColumns", [])),
            schema=version["schema"]["openAPIV3Schema"],
            custom=True,
        )
        for version in spec["versions"]
        if version.get("served", True)
    ]


class CrdController:
    """Admission and lifecycle of CRDs and their custom resources for one `KubeApi`."""

    def __init__(self, api: KubeApi) -> None:
        self._api = api
        self._served: dict[str, list[ResourceType]] = {}

    def attach(self) -> None:
        self._api.admissions.append(self.admit)
        self._api.after_write.append(self.on_change)

    def admit(
        self, rtype: ResourceType, obj: dict[str, Any], stored: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Check a CRD body, or prune and validate a custom resource; 422 naming the field."""
        name = obj.get("metadata", {}).get("name", "")
        if rtype.key() == CRD_KEY:
            if errors := crd_errors(obj):
                raise invalid(rtype.kind, rtype.group, name, errors)
            return obj
        if not rtype.custom or rtype.schema is None:
            return obj
        pruned = crschema.prune_resource(rtype.schema, obj)
        if errors := crschema.validation_errors(rtype.schema, pruned):
            raise invalid(rtype.kind, rtype.group, name, errors)
        return pruned

    def on_change(self, rtype: ResourceType, change: str, obj: dict[str, Any]) -> None:
        if rtype.key() != CRD_KEY:
            return
        name = obj["metadata"]["name"]
        if change == "DELETED":
            self._stop_serving(name)
        elif "deletionTimestamp" not in obj["metadata"]:
            self._serve(name, obj)
            self._establish(rtype, obj)

    def _serve(self, name: str, crd: dict[str, Any]) -> None:
        served = resource_types(crd)
        for old in self._served.get(name, []):
            if old.key() not in {t.key() for t in served}:
                self._api.registry.remove(*old.key())
        for rtype in served:
            self._api.registry.add(rtype)
        self._served[name] = served

    def _stop_serving(self, name: str) -> None:
        for rtype in self._served.pop(name, []):
            self._api.registry.remove(*rtype.key())
            items, _ = self._api.store.list(rtype.key())
            for item in items:
                meta = item["metadata"]
                self._api.store.remove(rtype.key(), meta.get("namespace", ""), meta["name"])

    def _establish(self, rtype: ResourceType, crd: dict[str, Any]) -> None:
        names = crd["spec"]["names"]
        status = {
            "acceptedNames": {
                "kind": names["kind"],
                "listKind": names.get("listKind", f"{names['kind']}List"),
                "plural": names["plural"],
                "singular": names.get("singular", names["kind"].lower()),
                **({"shortNames": names["shortNames"]} if names.get("shortNames") else {}),
                **({"categories": names["categories"]} if names.get("categories") else {}),
            },
            "conditions": [
                {
                    "type": kind,
                    "status": "True",
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": _since(crd, kind),
                }
                for kind, reason, message in (
                    ("NamesAccepted", "NoConflicts", "no conflicts found"),
                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                )
            ],
            "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
        }
        if crd.get("status") != status:
            self._api.write_internal(rtype, {**crd, "status": status})


def _since(crd: dict[str, Any], condition: str) -> str:
    for existing in (crd.get("status") or {}).get("conditions", []):
        if existing.get("type") == condition and existing.get("lastTransitionTime"):
            return str(existing["lastTransitionTime"])
    return now_rfc3339()
