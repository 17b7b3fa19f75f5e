"""Strategic merge patch for the built-in kinds the fake API server serves.

`kubectl label`, `annotate`, `edit` and client-side `apply` send
``application/strategic-merge-patch+json`` for built-in kinds. The semantics depend on patch
metadata Kubernetes declares on its Go types (``patchStrategy``/``patchMergeKey`` tags): a list
tagged ``merge`` is merged element by element, keyed by its merge key; every other list is
replaced whole. `LIST_STRATEGIES` transcribes those tags for the kinds we serve (Pod, Node,
Service, ConfigMap, Secret, Namespace, Lease, Event, and the stored-only kinds a Helm chart
creates) by dotted field path, where a list's items add
no path segment (``spec.containers.env``). The same table carries the
``x-kubernetes-list-map-keys`` server-side apply uses (`apply.py`) and the extensions the OpenAPI
document publishes (`openapi.py`), so the three can never disagree.

Directives implemented as ``strategicpatch`` defines them: ``$patch: replace|delete|merge`` on
maps and list elements, ``$deleteFromPrimitiveList/<field>``, ``$setElementOrder/<field>``,
``$retainKeys`` and ``null`` deleting a key. One simplification: with ``$setElementOrder`` the
elements it does not name keep their relative order after the named ones, where the real server
interleaves them by their old positions.

Custom resources have no such metadata; the server answers 415 for them (`patch.py`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from trainguard.testing.kube.patcherror import bad_request

JsonMap = dict[str, Any]


@dataclass(frozen=True)
class ListStrategy:
    """How one list field merges: by a key (maps), as a set (primitives), and its SSA map keys."""

    merge_key: str | None
    """The ``patchMergeKey``; None for a list of primitives merged as a set."""
    map_keys: tuple[str, ...] = ()
    """``x-kubernetes-list-map-keys`` for server-side apply; empty means the merge key alone."""
    retain_keys: bool = False
    """Whether ``patchStrategy`` also says ``retainKeys`` (volumes)."""

    @property
    def apply_keys(self) -> tuple[str, ...]:
        """The keys server-side apply identifies an element by (empty for a set)."""
        if self.map_keys:
            return self.map_keys
        return (self.merge_key,) if self.merge_key else ()


_BY_NAME = ListStrategy("name")
_BY_TYPE = ListStrategy("type")
_BY_IP = ListStrategy("ip")
_SET = ListStrategy(None)
_BY_UID = ListStrategy("uid")
_CONTAINER_LISTS = {
    "ports": ListStrategy("containerPort", map_keys=("containerPort", "protocol")),
    "env": _BY_NAME,
    "volumeMounts": ListStrategy("mountPath"),
    "volumeDevices": ListStrategy("devicePath"),
}
_METADATA = {
    "metadata.finalizers": _SET,
    "metadata.ownerReferences": _BY_UID,
}


def _pod_spec(prefix: str) -> dict[str, ListStrategy]:
    lists = {
        f"{prefix}.volumes": ListStrategy("name", retain_keys=True),
        f"{prefix}.imagePullSecrets": _BY_NAME,
        f"{prefix}.hostAliases": _BY_IP,
        f"{prefix}.schedulingGates": _BY_NAME,
        f"{prefix}.evictionResponders": _BY_NAME,
        f"{prefix}.volumes.ephemeral.volumeClaimTemplate.metadata.finalizers": _SET,
        f"{prefix}.volumes.ephemeral.volumeClaimTemplate.metadata.ownerReferences": _BY_UID,
        f"{prefix}.resourceClaims": ListStrategy("name", retain_keys=True),
        f"{prefix}.topologySpreadConstraints": ListStrategy(
            "topologyKey", map_keys=("topologyKey", "whenUnsatisfiable")
        ),
    }
    for containers in ("containers", "initContainers", "ephemeralContainers"):
        lists[f"{prefix}.{containers}"] = _BY_NAME
        for field, strategy in _CONTAINER_LISTS.items():
            lists[f"{prefix}.{containers}.{field}"] = strategy
    return lists


def _pod_status() -> dict[str, ListStrategy]:
    lists = {
        "status.conditions": _BY_TYPE,
        "status.podIPs": _BY_IP,
        "status.hostIPs": _BY_IP,
        "status.resourceClaimStatuses": ListStrategy("name", retain_keys=True),
        "status.nodeAllocatableResourceClaimStatuses": ListStrategy("resourceClaimName"),
        "status.nodeAllocatableResourceClaimStatuses.mapping": _BY_NAME,
        "status.nodeAllocatableResourceClaimStatuses.overhead": _BY_NAME,
        "status.volumeHealth.healthConditions": ListStrategy(
            "status", map_keys=("status", "reason")
        ),
    }
    for statuses in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        lists[f"status.{statuses}.allocatedResourcesStatus"] = _BY_NAME
        lists[f"status.{statuses}.volumeMounts"] = ListStrategy("mountPath")
    return lists


LIST_STRATEGIES: dict[str, dict[str, ListStrategy]] = {
    "Pod": {**_METADATA, **_pod_spec("spec"), **_pod_status()},
    "Node": {
        **_METADATA,
        "spec.podCIDRs": _SET,
        "status.conditions": _BY_TYPE,
        "status.addresses": _BY_TYPE,
    },
    "Service": {
        **_METADATA,
        "spec.ports": ListStrategy("port", map_keys=("port", "protocol")),
        "status.conditions": _BY_TYPE,
    },
    "Namespace": {**_METADATA, "status.conditions": _BY_TYPE},
    "ConfigMap": dict(_METADATA),
    "Secret": dict(_METADATA),
    "Lease": dict(_METADATA),
    "Event": dict(_METADATA),
    # stored without controllers, for Helm charts: their pod templates merge as a Pod's spec
    **{
        kind: {**_METADATA, **_pod_spec("spec.template.spec"), "status.conditions": _BY_TYPE}
        for kind in ("Deployment", "DaemonSet", "Job")
    },
    "PodDisruptionBudget": {**_METADATA, "status.conditions": _BY_TYPE},
    "ServiceAccount": {**_METADATA, "secrets": ListStrategy("name")},
    **{
        kind: dict(_METADATA)
        for kind in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    },
}
"""Merge lists per kind; a list not named here is atomic (replaced whole) as in Kubernetes."""

_DELETE_FROM = "$deleteFromPrimitiveList/"
_SET_ORDER = "$setElementOrder/"


def supports(kind: str) -> bool:
    """Whether strategic merge patch is defined for `kind` (False for custom resources)."""
    return kind in LIST_STRATEGIES


def list_strategy(kind: str, path: str) -> ListStrategy | None:
    """The merge strategy of the list at dotted `path` of `kind`, or None when it is atomic."""
    return LIST_STRATEGIES.get(kind, {}).get(path)


def strategic_merge(original: JsonMap, patch: JsonMap, *, kind: str) -> JsonMap:
    """Apply a strategic merge `patch` to `original` (neither is modified) for a built-in `kind`.

    Raises:
        PatchError: 400 when the patch misuses a directive or lacks a merge key.
    """
    merged = _Merger(kind).merge_map(copy.deepcopy(original), patch, "")
    return merged if merged is not None else {}


class _Merger:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def merge_map(self, original: JsonMap, patch: JsonMap, path: str) -> JsonMap | None:
        """Merge `patch` into `original` in place; None means the map is deleted."""
        patch = dict(patch)
        directive = patch.pop("$patch", "merge")
        if directive == "delete":
            return None
        if directive == "replace":
            return self.merge_map({}, patch, path)
        if directive != "merge":
            raise bad_request(f"Unknown patch type: {directive!r} at {path or '<root>'}")
        retain = patch.pop("$retainKeys", None)
        orders = self._pop_prefixed(patch, _SET_ORDER)
        for field, values in self._pop_prefixed(patch, _DELETE_FROM).items():
            self._delete_from_primitive_list(original, field, values, path)
        for key, value in patch.items():
            self._merge_key(original, key, value, _join(path, key))
        for field, order in orders.items():
            if isinstance(original.get(field), list):
                original[field] = self._ordered(original[field], order, _join(path, field))
        if retain is not None:
            if not isinstance(retain, list):
                raise bad_request(f"$retainKeys at {path or '<root>'} must be a list")
            original = {k: v for k, v in original.items() if k in retain}
        return original

    def _merge_key(self, target: JsonMap, key: str, value: Any, path: str) -> None:
        if key.startswith("$"):
            raise bad_request(f"unknown patch directive {key!r} at {path}")
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            merged = self.merge_map(current if isinstance(current, dict) else {}, value, path)
            if merged is None:
                target.pop(key, None)
            else:
                target[key] = merged
        elif isinstance(value, list):
            current = target.get(key)
            target[key] = self.merge_list(current if isinstance(current, list) else [], value, path)
        else:
            target[key] = value

    def merge_list(self, original: list[Any], patch: list[Any], path: str) -> list[Any]:
        """Merge a list by the field's strategy; atomic lists are replaced by the patch."""
        strategy = list_strategy(self.kind, path)
        if strategy is None:
            return [self._plain(item, path) for item in patch]
        if strategy.merge_key is None:
            return original + [v for i, v in enumerate(patch) if v not in original + patch[:i]]
        if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
            kept = [item for item in patch if not (isinstance(item, dict) and "$patch" in item)]
            return [self._plain(item, path) for item in kept]
        for item in patch:
            self._merge_element(original, item, strategy.merge_key, path)
        return original

    def _merge_element(self, items: list[Any], element: Any, key: str, path: str) -> None:
        if not isinstance(element, dict):
            raise bad_request(f"{path}: expected a map in a list merged by {key!r}")
        if key not in element:
            raise bad_request(f"map: {element} does not contain declared merge key: {key}")
        index = next(
            (
                i
                for i, item in enumerate(items)
                if isinstance(item, dict) and item.get(key) == element[key]
            ),
            None,
        )
        if element.get("$patch") == "delete":
            if index is not None:
                del items[index]
            return
        base = items[index] if index is not None else {}
        merged = self.merge_map(base, element, path)
        if merged is None:
            return
        if index is None:
            items.append(merged)
        else:
            items[index] = merged

    def _plain(self, item: Any, path: str) -> Any:
        """An element of a replaced list, with any directives inside it applied to nothing."""
        if isinstance(item, dict):
            return self.merge_map({}, item, path) or {}
        return item

    def _delete_from_primitive_list(
        self, target: JsonMap, field: str, values: Any, path: str
    ) -> None:
        if not isinstance(values, list):
            raise bad_request(f"{_DELETE_FROM}{field} at {path or '<root>'} must be a list")
        if isinstance(target.get(field), list):
            target[field] = [v for v in target[field] if v not in values]

    def _ordered(self, items: list[Any], order: Any, path: str) -> list[Any]:
        if not isinstance(order, list):
            raise bad_request(f"{_SET_ORDER} at {path} must be a list")
        strategy = list_strategy(self.kind, path)
        key = strategy.merge_key if strategy else None

        def identity(item: Any) -> Any:
            return item.get(key) if key and isinstance(item, dict) else item

        wanted = [identity(o) if isinstance(o, dict) else o for o in order]
        position = {json_key(v): i for i, v in enumerate(wanted)}
        ranked = sorted(
            enumerate(items),
            key=lambda pair: (position.get(json_key(identity(pair[1])), len(wanted)), pair[0]),
        )
        return [item for _, item in ranked]

    @staticmethod
    def _pop_prefixed(patch: JsonMap, prefix: str) -> dict[str, Any]:
        return {k[len(prefix) :]: patch.pop(k) for k in [k for k in patch if k.startswith(prefix)]}


def json_key(value: Any) -> str:
    """A hashable stand-in for any JSON value (used to compare list identities)."""
    return repr(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
