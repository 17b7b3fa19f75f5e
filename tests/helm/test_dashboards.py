"""Every metric the chart's dashboard and alerts query is one trainguard exports.

The Grafana dashboard (``dashboards/trainguard.json``, shipped as a sidecar ConfigMap) and the
PrometheusRule are parsed with a real PromQL parser (promql-parser, the Rust one GreptimeDB
uses); each vector selector's metric name must be a series that the operator's registry
(`trainguard.metrics.Metrics`) or the MTC server's (`MtcMetrics`) exports, with the suffixes
Prometheus adds (``_total`` for counters, ``_bucket``/``_sum``/``_count`` for histograms). A
renamed metric therefore breaks this test instead of leaving an empty panel.
"""

from __future__ import annotations

import json
from typing import Any

import promql_parser
import pytest
from prometheus_client import CollectorRegistry

from tests.helm.chart import CHART, FULL, named, render
from trainguard import constants as c
from trainguard.checkpoint.mtc.metrics import MtcMetrics
from trainguard.metrics import PREFIX, Metrics

DASHBOARD = json.loads((CHART / "dashboards" / "trainguard.json").read_text())
HYPERPOD_METRICS = {
    f"{PREFIX}_jobs_{what}"
    for what in ("created", "deleted", "successful", "failed", "restarted", "restart_latency",
                 "fault_detection_latency")
}  # fmt: skip
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported(registry: CollectorRegistry) -> set[str]:
    """The series names a scrape of ``registry`` can return."""
    return {
        family.name + suffix for family in registry.collect() for suffix in SUFFIXES[family.type]
    }


EXPORTED = exported(Metrics().registry) | exported(MtcMetrics().registry)


def panel_queries() -> list[str]:
    return [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]]


def alert_rules() -> list[dict[str, Any]]:
    rule = named(render(FULL), "PrometheusRule", "tg-trainguard")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    assert found, f"{expr!r} queries no metric"
    return found


@pytest.mark.parametrize("expr", panel_queries() + [r["expr"] for r in alert_rules()])
def test_every_queried_metric_is_exported(expr: str) -> None:
    for selector in selectors(expr):
        assert selector.name in EXPORTED, f"{selector.name} in {expr!r} is not exported"


def test_the_exporters_registry_is_what_the_test_thinks() -> None:
    assert f"{PREFIX}_jobs_created_total" in EXPORTED
    assert "trainguard_mtc_put_seconds_bucket" in EXPORTED
    assert "no_such_metric" not in EXPORTED
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(x[5m])")


def test_dashboard_covers_hyperpods_seven_metrics_and_ours() -> None:
    queried = {s.name for expr in panel_queries() for s in selectors(expr)}
    bases = {name.removesuffix("_total").removesuffix("_bucket") for name in queried}
    assert bases >= HYPERPOD_METRICS
    ours = {"trainguard_checkpoint_save_stall_seconds", "trainguard_job_goodput",
            "trainguard_node_health_status", f"{PREFIX}_jobs_restart_latency"}  # fmt: skip
    assert ours <= bases


def test_alerts_cover_failure_exhausted_restarts_unhealthy_nodes_and_hangs() -> None:
    rules = {r["alert"]: r["expr"] for r in alert_rules()}
    assert set(rules) == {
        "TrainguardJobFailed",
        "TrainguardRestartsExhausting",
        "TrainguardNodeUnhealthy",
        "TrainguardHangDetected",
    }
    assert "trainguard_job_full_restarts_remaining" in rules["TrainguardRestartsExhausting"]
    assert c.HEALTH_PENDING_REBOOT in rules["TrainguardNodeUnhealthy"]
    assert c.REASON_LOG_HANGING_PREFIX in rules["TrainguardHangDetected"]


def test_dashboard_configmap_carries_the_sidecar_label_and_the_json() -> None:
    configmap = named(render(), "ConfigMap", "tg-trainguard-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["trainguard.json"]) == DASHBOARD
