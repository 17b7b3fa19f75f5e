"""Render the Helm chart in deploy/helm/trainguard with Helm's own Go code (helm-python-sdk).

Every chart test reads objects through `render`: the documents of the rendered templates,
parsed, in template order. ``FULL`` turns every optional part on (ServiceMonitor,
PrometheusRule, deep health checks on two nodes) so the static tests see every template.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "trainguard"
RELEASE = "tg"
NAMESPACE = "trainguard-system"
FULL: dict[str, Any] = {
    "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "deepHealthCheck": {"enabled": True, "nodes": ["node-0", "node-1"]},
}
"""Values that render every template."""
NOT_BUILT_IN = {"monitoring.coreos.com/v1"}
"""API versions of the Prometheus Operator's CRDs: no Kubernetes schema, no fake resource."""

Obj = dict[str, Any]


def render(values: Obj | None = None, *, namespace: str = NAMESPACE) -> list[Obj]:
    """The chart's objects for ``values`` (NOTES.txt excluded), in template order."""
    key = json.dumps(values or {}, sort_keys=True)
    return [json.loads(text) for text in _render(key, namespace)]


@functools.cache
def _render(values_json: str, namespace: str) -> tuple[str, ...]:
    import helm_python as helm  # a 250 MB native library: load it on first use

    with helm.Chart.load(str(CHART)) as chart:
        manifests = chart.render(json.loads(values_json), name=RELEASE, namespace=namespace)
    documents = [
        doc
        for name, text in sorted(manifests.items())
        if name.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    return tuple(json.dumps(doc) for doc in documents)


def notes(values: Obj | None = None) -> str:
    """NOTES.txt as ``helm install`` prints it for ``values``."""
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    return rendered["trainguard/templates/NOTES.txt"]


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def lint(values: Obj | None = None) -> dict[str, Any]:
    """``helm lint --strict`` of the chart with ``values``."""
    import helm_python as helm

    report: dict[str, Any] = helm.lint(str(CHART), values or {}, strict=True, namespace=NAMESPACE)
    return report


def crd_file() -> Obj:
    """The CRD the chart installs from ``crds/``."""
    documents = list(yaml.safe_load_all((CHART / "crds" / "hyperpodpytorchjobs.yaml").read_text()))
    assert len(documents) == 1
    crd: Obj = documents[0]
    return crd
