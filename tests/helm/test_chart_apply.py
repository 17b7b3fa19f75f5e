"""The rendered chart applied with the real kubectl to the test cluster: every object accepted.

The fake API server stores Deployments, DaemonSets, Jobs, PodDisruptionBudgets, ServiceAccounts
and RBAC objects without controllers (`trainguard.testing.kube.resources`), validating each
against Kubernetes' own schema through kubectl's server-side field validation. The Prometheus
Operator's ServiceMonitor and PrometheusRule need its CRDs; the test creates stand-ins with open
schemas (a real cluster brings the real ones), so those two are checked for being accepted as
custom resources, not against the Prometheus Operator's schema.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import CHART, FULL, NAMESPACE, render
from tests.scenarios.kube import kubectl_path
from trainguard.testing.kube.cluster import TestCluster

pytestmark = pytest.mark.slow


def stand_in_crd(kind: str, plural: str) -> dict[str, Any]:
    """An open-schema CRD for a monitoring.coreos.com/v1 kind."""
    group = "monitoring.coreos.com"
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                      "listKind": f"{kind}List"},
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": schema}}],
        },
    }  # fmt: skip


def test_kubectl_applies_every_rendered_object(tmp_path: Path) -> None:
    objects = render(FULL)
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(objects))
    monitoring = tmp_path / "monitoring-crds.yaml"
    monitoring.write_text(
        yaml.safe_dump_all(
            [stand_in_crd("ServiceMonitor", "servicemonitors"),
             stand_in_crd("PrometheusRule", "prometheusrules")]
        )
    )  # fmt: skip
    with TestCluster(nodes=1, workdir=tmp_path / "cluster") as cluster:

        def kubectl(*args: str) -> str:
            done = subprocess.run(
                [kubectl_path(), "--kubeconfig", str(cluster.kubeconfig), *args],
                capture_output=True, text=True, timeout=120, check=False,
                env={**os.environ, "KUBECACHEDIR": str(tmp_path / ".kube-cache")},
            )  # fmt: skip
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
            return done.stdout

        kubectl("apply", "--server-side", "-f", str(CHART / "crds"))
        kubectl("apply", "--server-side", "-f", str(monitoring))
        kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
        namespace = tmp_path / "namespace.yaml"  # as helm install --create-namespace would
        namespace.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": NAMESPACE}}))  # fmt: skip
        kubectl("apply", "-f", str(namespace))
        applied = kubectl("apply", "--server-side", "-f", str(rendered), "-o", "name")
        assert len(applied.split()) == len(objects)
        for obj in objects:
            kind = obj["kind"].lower() + "." + (obj["apiVersion"].rpartition("/")[0] or "")
            where = ["-n", obj["metadata"]["namespace"]] if "namespace" in obj["metadata"] else []
            stored = json.loads(
                kubectl("get", kind.rstrip("."), obj["metadata"]["name"], *where, "-o", "json")
            )
            assert stored["metadata"]["labels"] == obj["metadata"].get("labels"), obj["kind"]
        # client-side apply of the same objects is a no-op the server accepts as well
        kubectl("apply", "-f", str(rendered))
