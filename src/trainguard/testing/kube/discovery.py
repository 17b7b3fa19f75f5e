"""Discovery documents, built from the registry so CRDs appear the moment they are created.

Clients learn what exists from discovery before anything else: kubectl maps ``pods``/``po``/
``hpjob`` to a path through it, and lightkube's generic resources need the group served.
kubectl 1.37 first asks for aggregated discovery (``apidiscovery.k8s.io/v2``
``APIGroupDiscoveryList`` on ``/api`` and ``/apis``) and falls back to the legacy documents
(``APIVersions``, ``APIGroupList``, ``APIResourceList``), so both are served.
"""

from __future__ import annotations

from typing import Any

from trainguard.testing.kube.resources import SUBRESOURCE_VERBS, ResourceRegistry, ResourceType

AGGREGATED_MEDIA_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
SERVER_ADDRESS = "127.0.0.1"


def wants_aggregated(accept: str) -> bool:
    """True when the client's first acceptable type is aggregated discovery v2."""
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")}
        if "g=apidiscovery.k8s.io" in params and "v=v2" in params:
            return True
        if part.strip().startswith("application/json") and "as=" not in part:
            return False
    return False


def api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": SERVER_ADDRESS}
        ],
    }


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


def api_group_list(registry: ResourceRegistry) -> dict[str, Any]:
    groups = [_group_entry(g, vs) for g, vs in registry.groups().items()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: ResourceRegistry, group: str) -> dict[str, Any] | None:
    versions = registry.groups().get(group)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)}


def _resource_entry(rtype: ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": rtype.resource,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        main["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        main["categories"] = list(rtype.categories)
    subs = [
        {
            "name": f"{rtype.resource}/{sub}",
            "singularName": "",
            "namespaced": rtype.namespaced,
            "kind": _subresource_kind(rtype, sub),
            "verbs": _subresource_verbs(sub),
        }
        for sub in rtype.subresources
    ]
    return [main, *subs]


def _subresource_kind(rtype: ResourceType, sub: str) -> str:
    return {"binding": "Binding", "log": "Pod"}.get(sub, rtype.kind)


def _subresource_verbs(sub: str) -> list[str]:
    return {"binding": ["create"], "log": ["get"]}.get(sub, list(SUBRESOURCE_VERBS))


def api_resource_list(
    registry: ResourceRegistry, group: str, version: str
) -> dict[str, Any] | None:
    types = [t for t in registry.all() if (t.group, t.version) == (group, version)]
    if not types:
        return None
    resources = [entry for t in types for entry in _resource_entry(t)]
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def _aggregated_resource(rtype: ResourceType) -> dict[str, Any]:
    kind = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
    entry: dict[str, Any] = {
        "resource": rtype.resource,
        "responseKind": kind,
        "scope": "Namespaced" if rtype.namespaced else "Cluster",
        "singularResource": rtype.singular,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    if rtype.subresources:
        entry["subresources"] = [
            {
                "subresource": sub,
                "responseKind": {**kind, "kind": _subresource_kind(rtype, sub)},
                "verbs": _subresource_verbs(sub),
            }
            for sub in rtype.subresources
        ]
    return entry


def aggregated(registry: ResourceRegistry, *, core: bool) -> dict[str, Any]:
    """``APIGroupDiscoveryList`` for ``/api`` (``core``) or ``/apis``."""
    by_group: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for rtype in registry.all():
        if (rtype.group == "") == core:
            versions = by_group.setdefault(rtype.group, {})
            versions.setdefault(rtype.version, []).append(_aggregated_resource(rtype))
    items = [
        {
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [
                {"version": v, "resources": rs, "freshness": "Current"}
                for v, rs in versions.items()
            ],
        }
        for group, versions in by_group.items()
    ]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
