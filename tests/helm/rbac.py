"""The chart's RBAC as a set of grants, and a request log checked against it.

A grant is what one rule of a Role or ClusterRole bound to a ServiceAccount allows:
``(namespace, group, resource[/subresource], verb)``, with namespace None for a ClusterRole
bound by a ClusterRoleBinding (every namespace and cluster-scoped objects). A request is
allowed when a grant matches it in its namespace or cluster-wide, as the RBAC authorizer
decides (no wildcards here: the chart uses none, `test_chart` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.helm.chart import Obj, of_kind
from trainguard.testing.kube.audit import AuditEntry


@dataclass(frozen=True)
class Grant:
    namespace: str | None
    group: str
    resource: str
    verb: str

    def __str__(self) -> str:
        where = f"in {self.namespace}" if self.namespace is not None else "cluster-wide"
        return f"{self.verb} {self.group or 'core'}/{self.resource} {where}"


def grants_of(objects: list[Obj], *, account: str, namespace: str) -> set[Grant]:
    """Every grant the rendered ``objects`` give ServiceAccount ``namespace/account``."""
    roles = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o["rules"]
        for o in of_kind(objects, "Role") + of_kind(objects, "ClusterRole")
    }
    found: set[Grant] = set()
    for binding in of_kind(objects, "RoleBinding") + of_kind(objects, "ClusterRoleBinding"):
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == account and s["namespace"] == namespace
            for s in binding["subjects"]
        ):
            continue
        scope = binding["metadata"].get("namespace")  # None for a ClusterRoleBinding
        ref = binding["roleRef"]
        role_namespace = scope if ref["kind"] == "Role" else None
        for rule in roles[(ref["kind"], role_namespace, ref["name"])]:
            found |= {
                Grant(scope, group, resource, verb)
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
            }
    return found


def _order(grant: Grant) -> tuple[str, str, str, str]:
    return (grant.namespace or "", grant.group, grant.resource, grant.verb)


def needed(entry: AuditEntry) -> Grant:
    """The grant a request needs (namespace None: cluster-scoped or across all namespaces)."""
    resource = f"{entry.resource}/{entry.subresource}" if entry.subresource else entry.resource
    return Grant(entry.namespace or None, entry.group, resource, entry.verb)


def allows(grants: set[Grant], want: Grant) -> bool:
    cluster_wide = Grant(None, want.group, want.resource, want.verb)
    return want in grants or cluster_wide in grants


def missing(grants: set[Grant], used: set[Grant]) -> list[Grant]:
    """Requests no grant allows."""
    return sorted((g for g in used if not allows(grants, g)), key=_order)


def unused(grants: set[Grant], used: set[Grant]) -> list[Grant]:
    """Grants no request needed."""
    return sorted(
        (
            g
            for g in grants
            if not any(
                (g.namespace is None or g.namespace == u.namespace)
                and (g.group, g.resource, g.verb) == (u.group, u.resource, u.verb)
                for u in used
            )
        ),
        key=_order,
    )
