"""How a create or update body becomes the stored object: the API server's write rules.

The rules clients depend on: ``generateName``; the namespace taken from the URL; server-owned
metadata (uid, creationTimestamp, deletionTimestamp, generation) never taken from the body; the
``/status`` split (a write to the main resource keeps the stored status, a write to ``/status``
keeps everything else); ``generation`` — only for the kinds whose strategies keep one (custom
resources, CRDs and, since 1.34, pods; not ConfigMaps, Nodes, Events, ...) — bumped only when
something outside metadata and status changes; no finalizer added to an object being deleted.
Each rule follows the upstream strategies (``pkg/registry/core/*/strategy.go``, apiextensions'
``customresource`` strategy).
"""

from __future__ import annotations

import copy
import random
import re
from typing import Any

from trainguard.testing.kube.apierrors import bad_request, invalid
from trainguard.testing.kube.resources import ResourceType

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
SERVER_OWNED = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")
_STATUS_ON_CREATE: dict[tuple[str, str], dict[str, Any] | None] = {
    ("", "pods"): {"phase": "Pending"},
    ("", "namespaces"): {"phase": "Active"},
    ("", "nodes"): None,  # None: a node keeps the status it is created with (kubelets do that)
}


GENERATION_TRACKED = frozenset(
    {("", "pods"), ("apiextensions.k8s.io", "customresourcedefinitions")}
)
"""Built-in (group, resource)s with ``metadata.generation``; custom resources always have one."""


def tracks_generation(rtype: ResourceType) -> bool:
    return rtype.custom or (rtype.group, rtype.resource) in GENERATION_TRACKED


def _body_without_meta_and_status(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _check_identity(rtype: ResourceType, obj: dict[str, Any], namespace: str) -> None:
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
        raise bad_request("the body must be a JSON object with an object under metadata")
    if obj.get("kind") not in (None, rtype.kind):
        raise bad_request(f"kind {obj.get('kind')!r} does not match the resource {rtype.kind!r}")
    body_namespace = obj.get("metadata", {}).get("namespace")
    if rtype.namespaced and body_namespace not in (None, "", namespace):
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )


def _name_causes(name: str | None) -> list[tuple[str, str]]:
    if not name:
        return [("metadata.name", "Required value: name or generateName is required")]
    if len(name) > 253 or not _NAME.match(name):
        return [("metadata.name", f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain")]
    return []


def prepare_create(rtype: ResourceType, obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The object to store for a POST of ``obj`` in ``namespace`` ("" if cluster-scoped)."""
    _check_identity(rtype, obj, namespace)
    obj = copy.deepcopy(obj)
    obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
    meta = obj.setdefault("metadata", {})
    for owned in (*SERVER_OWNED, "resourceVersion", "generation"):
        meta.pop(owned, None)
    if not meta.get("name") and meta.get("generateName"):
        suffix = "".join(random.choices(_SUFFIX_ALPHABET, k=5))
        meta["name"] = f"{meta['generateName']}{suffix}"
    if causes := _name_causes(meta.get("name")):
        raise invalid(rtype.kind, rtype.group, meta.get("name", ""), causes)
    if rtype.namespaced:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if tracks_generation(rtype):
        meta["generation"] = 1
    if rtype.has_status:
        _reset_status_on_create(rtype, obj)
    return obj


def _reset_status_on_create(rtype: ResourceType, obj: dict[str, Any]) -> None:
    rule = _STATUS_ON_CREATE.get((rtype.group, rtype.resource), {})
    if rule is None:
        return
    if rule:
        obj["status"] = copy.deepcopy(rule)
    else:
        obj.pop("status", None)


def prepare_update(
    rtype: ResourceType, obj: dict[str, Any], stored: dict[str, Any], *, subresource: str = ""
) -> dict[str, Any]:
    """The object to store for a PUT of ``obj`` over ``stored`` (to the resource or ``/status``).

    Raises:
        ApiError: 400 for a body naming another object, 422 for a finalizer added while deleting.
    """
    meta = obj.get("metadata", {}) if isinstance(obj, dict) else {}
    _check_identity(rtype, obj, stored["metadata"].get("namespace", ""))
    if meta.get("name") not in (None, stored["metadata"]["name"]):
        raise bad_request("the name of the object does not match the name on the URL")
    if subresource == "status":
        new = _status_write(rtype, obj, stored)
    else:
        new = _main_write(rtype, obj, stored)
    _keep_server_owned(new, stored)
    _forbid_new_finalizers_while_deleting(rtype, new, stored)
    new["metadata"].pop("generation", None)
    if tracks_generation(rtype):
        new["metadata"]["generation"] = _next_generation(new, stored)
    return new


def _main_write(rtype: ResourceType, obj: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(obj)
    new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
    new.setdefault("metadata", {})
    if rtype.has_status:
        new.pop("status", None)
        if "status" in stored:
            new["status"] = copy.deepcopy(stored["status"])
    return new


def _status_write(
    rtype: ResourceType, obj: dict[str, Any], stored: dict[str, Any]
) -> dict[str, Any]:
    """Custom resources keep all but status; built-ins also take labels and annotations."""
    new = copy.deepcopy(stored)
    if "status" in obj:
        new["status"] = copy.deepcopy(obj["status"])
    else:
        new.pop("status", None)
    if not rtype.custom:
        for key in ("labels", "annotations"):
            if key in obj.get("metadata", {}):
                new["metadata"][key] = copy.deepcopy(obj["metadata"][key])
    return new


def _keep_server_owned(new: dict[str, Any], stored: dict[str, Any]) -> None:
    meta = new["metadata"]
    meta["name"] = stored["metadata"]["name"]
    if "namespace" in stored["metadata"]:
        meta["namespace"] = stored["metadata"]["namespace"]
    for owned in SERVER_OWNED:
        meta.pop(owned, None)
        if owned in stored["metadata"]:
            meta[owned] = stored["metadata"][owned]


def _forbid_new_finalizers_while_deleting(
    rtype: ResourceType, new: dict[str, Any], stored: dict[str, Any]
) -> None:
    if "deletionTimestamp" not in stored["metadata"]:
        return
    added = set(new["metadata"].get("finalizers", [])) - set(
        stored["metadata"].get("finalizers", [])
    )
    if added:
        cause = (
            "metadata.finalizers",
            "Forbidden: no new finalizers can be added if the object is being deleted, "
            f"found new finalizers {sorted(added)}",
        )
        raise invalid(rtype.kind, rtype.group, stored["metadata"]["name"], [cause])


def _next_generation(new: dict[str, Any], stored: dict[str, Any]) -> int:
    generation = int(stored["metadata"].get("generation", 1))
    if _body_without_meta_and_status(new) != _body_without_meta_and_status(stored):
        return generation + 1
    return generation
