"""Resource URLs taken apart: ``/api/v1/namespaces/ns/pods/name/status`` → a `Target`.

The API server's URL scheme is regular (group, version, optional namespace, resource, name,
subresource); parsing it in one place lets a single handler serve every resource, including
ones registered from CRDs while the server runs, and lets audit and fault injection see the
same verb and resource as RBAC.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainguard.testing.kube.apierrors import ApiError
from trainguard.testing.kube.resources import ResourceRegistry, ResourceType


@dataclass(frozen=True)
class Target:
    """What a resource request addresses; ``namespace`` None means across all namespaces."""

    resource: ResourceType
    namespace: str | None
    name: str
    subresource: str

    def rbac_verb(self, method: str, *, watch: bool) -> str:
        """The verb as RBAC names it (get, list, watch, create, update, patch, delete, ...)."""
        if method == "GET":
            if self.name:
                return "watch" if watch else "get"
            return "watch" if watch else "list"
        if method == "DELETE":
            return "delete" if self.name else "deletecollection"
        return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def _not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def parse_resource_path(registry: ResourceRegistry, path: str) -> Target:
    """The `Target` of a resource URL; 404 NotFound for paths no served resource matches."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise _not_found()
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces" and registry.find(group, version, rest[2]):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise _not_found()
    rtype = registry.find(group, version, rest[0])
    if rtype is None:
        raise _not_found()
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if subresource and subresource not in rtype.subresources:
        raise _not_found()
    if rtype.namespaced and name and namespace is None:
        raise _not_found()
    return Target(rtype, namespace if rtype.namespaced else None, name, subresource)
