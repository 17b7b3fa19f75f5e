"""The Kueue CRDs the admission simulator serves on the fake API server.

Only the three kinds the operator touches — ``Workload`` (namespaced, with a status
subresource and Kueue's printer columns), ``ResourceFlavor`` and ``WorkloadPriorityClass``
(cluster-scoped) — with schemas that keep every field (``x-kubernetes-preserve-unknown-fields``):
the simulator stands for Kueue's scheduler, not for its validation webhooks.
"""

from __future__ import annotations

from typing import Any

from trainguard import constants as c

OPEN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "x-kubernetes-preserve-unknown-fields": True,
}
WORKLOAD_COLUMNS = [
    {"name": "Queue", "type": "string", "jsonPath": ".spec.queueName"},
    {"name": "Reserved in", "type": "string", "jsonPath": ".status.admission.clusterQueue"},
    {"name": "Admitted", "type": "string",
     "jsonPath": ".status.conditions[?(@.type=='Admitted')].status"},
    {"name": "Finished", "type": "string",
     "jsonPath": ".status.conditions[?(@.type=='Finished')].status"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]  # fmt: skip


def kueue_crd(kind: str, plural: str, *, namespaced: bool) -> dict[str, Any]:
    """A ``kueue.x-k8s.io`` v1beta1 CRD for ``kind``."""
    version: dict[str, Any] = {
        "name": c.KUEUE_VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": OPEN_SCHEMA},
    }
    names: dict[str, Any] = {
        "kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List",
    }  # fmt: skip
    if kind == "Workload":
        version["subresources"] = {"status": {}}
        version["additionalPrinterColumns"] = WORKLOAD_COLUMNS
        names["shortNames"] = ["wl"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{c.KUEUE_GROUP}"},
        "spec": {
            "group": c.KUEUE_GROUP,
            "names": names,
            "scope": "Namespaced" if namespaced else "Cluster",
            "versions": [version],
        },
    }  # fmt: skip


KUEUE_CRDS = (
    kueue_crd("Workload", "workloads", namespaced=True),
    kueue_crd("ResourceFlavor", "resourceflavors", namespaced=False),
    kueue_crd("WorkloadPriorityClass", "workloadpriorityclasses", namespaced=False),
)
