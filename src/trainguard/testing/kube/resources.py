"""What the fake API server serves: one `ResourceType` per (group, version, resource).

Discovery, routing, storage keys, the status split and generation rules all read these
descriptions, so a resource registered here (built in, or from a CRD) is served completely. A
resource with a `StorageView` (``events.k8s.io/v1`` Events) has no storage of its own: it reads
and writes another resource's objects, converted in and out, as the real server serves one
stored type through several API versions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trainguard.testing.kube import eventviews
from trainguard.testing.kube.apierrors import ApiError

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class StorageView:
    """How a resource served over another one's storage converts objects in and out.

    The real server stores one internal type per resource and converts on every request; the
    fake stores the ``storage`` resource's form and converts with these two functions.
    """

    storage: tuple[str, str, str]
    to_storage: Callable[[dict[str, Any]], dict[str, Any]]
    from_storage: Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ResourceType:
    """One served resource: its names, scope, subresources and (for CRs) its schema."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    has_status: bool = False
    extra_subresources: tuple[str, ...] = ()
    printer_columns: tuple[dict[str, Any], ...] = ()
    schema: dict[str, Any] | None = None
    custom: bool = False
    """True for resources a CRD defines: generation then counts every change outside metadata
    and status, and bodies are validated and pruned against ``schema``."""
    view: StorageView | None = None
    """Set for a resource whose objects live in another resource's storage (events.k8s.io/v1
    Events in core/v1's); None for one stored under its own key."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def subresources(self) -> tuple[str, ...]:
        return (("status",) if self.has_status else ()) + self.extra_subresources

    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.resource)

    def storage_key(self) -> tuple[str, str, str]:
        """The storage this resource's objects live in (its own key unless it is a view)."""
        return self.view.storage if self.view else self.key()


def _core(resource: str, kind: str, *, namespaced: bool = True, **extra: Any) -> ResourceType:
    singular = extra.pop("singular", kind.lower())
    return ResourceType("", "v1", resource, kind, namespaced, singular, **extra)


_STORED_ONLY: tuple[tuple[str, str, str, bool, dict[str, Any]], ...] = (
    ("", "serviceaccounts", "ServiceAccount", True, {"short_names": ("sa",)}),
    ("apps", "deployments", "Deployment", True, {"short_names": ("deploy",), "has_status": True}),
    ("apps", "daemonsets", "DaemonSet", True, {"short_names": ("ds",), "has_status": True}),
    ("batch", "jobs", "Job", True, {"has_status": True}),
    ("policy", "poddisruptionbudgets", "PodDisruptionBudget", True,
     {"short_names": ("pdb",), "has_status": True}),
    ("rbac.authorization.k8s.io", "roles", "Role", True, {}),
    ("rbac.authorization.k8s.io", "rolebindings", "RoleBinding", True, {}),
    ("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", False, {}),
    ("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", False, {}),
)  # fmt: skip
"""Kinds a Helm chart creates that the fake stores without acting on them."""

BUILTIN: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", namespaced=False, short_names=("ns",), has_status=True),
    _core("nodes", "Node", namespaced=False, short_names=("no",), has_status=True),
    _core(
        "pods",
        "Pod",
        short_names=("po",),
        categories=("all",),
        has_status=True,
        extra_subresources=("binding", "log"),
    ),
    _core("services", "Service", short_names=("svc",), categories=("all",), has_status=True),
    _core("secrets", "Secret"),
    _core("configmaps", "ConfigMap", short_names=("cm",)),
    _core("events", "Event", short_names=("ev",)),
    ResourceType(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        True,
        "event",
        short_names=("ev",),
        view=StorageView(("", "v1", "events"), eventviews.to_core, eventviews.to_events_v1),
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True, "lease"),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        "customresourcedefinition",
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        has_status=True,
    ),
    *(
        # Stored only: the fake has no controllers for these (no ReplicaSets or Pods come of
        # a Deployment, DaemonSet or Job; RBAC is recorded, never enforced). They are served so
        # that a Helm chart applies with kubectl as it would to a real cluster.
        ResourceType(group, "v1", resource, kind, namespaced, kind.lower(), **extra)
        for group, resource, kind, namespaced, extra in _STORED_ONLY
    ),
)


@dataclass
class ResourceRegistry:
    """The served resources, safe to change while requests are served (CRDs come and go)."""

    _types: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def with_builtins(cls) -> ResourceRegistry:
        registry = cls()
        for resource_type in BUILTIN:
            registry.add(resource_type)
        return registry

    def add(self, resource_type: ResourceType) -> None:
        with self._lock:
            self._types[resource_type.key()] = resource_type

    def remove(self, group: str, version: str, resource: str) -> None:
        with self._lock:
            self._types.pop((group, version, resource), None)

    def find(self, group: str, version: str, resource: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, resource))

    def get(self, group: str, version: str, resource: str) -> ResourceType:
        """The resource type, or 404 NotFound as the real server answers an unknown path."""
        found = self.find(group, version, resource)
        if found is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return found

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        """The resource type serving ``kind`` in ``api_version`` (ownerReferences name kinds)."""
        return next(
            (t for t in self.all() if t.api_version == api_version and t.kind == kind), None
        )

    def groups(self) -> dict[str, list[str]]:
        """Named groups (not core) and their served versions, in registration order."""
        versions: dict[str, list[str]] = {}
        for resource_type in self.all():
            if resource_type.group and resource_type.version not in versions.setdefault(
                resource_type.group, []
            ):
                versions[resource_type.group].append(resource_type.version)
        return versions
