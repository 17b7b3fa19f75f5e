"""Prometheus metrics of the controller (DESIGN §6).

HyperPod's operator names (prefix ``hyperpod_training_operator``) so existing dashboards work,
plus trainguard's own. Each `Metrics` owns a registry, so several controllers in one process
(tests) never collide on the global one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

PREFIX = "hyperpod_training_operator"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    """The controller's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs_created = Counter(f"{PREFIX}_jobs_created", "Jobs created.", registry=r)
        self.jobs_deleted = Counter(f"{PREFIX}_jobs_deleted", "Jobs deleted.", registry=r)
        self.jobs_successful = Counter(f"{PREFIX}_jobs_successful", "Jobs completed.", registry=r)
        self.jobs_failed = Counter(f"{PREFIX}_jobs_failed", "Jobs failed.", registry=r)
        self.jobs_restarted = Counter(
            f"{PREFIX}_jobs_restarted", "Job restarts.", ["restart_type"], registry=r
        )
        self.restart_latency = Histogram(
            f"{PREFIX}_jobs_restart_latency",
            "Seconds from fault detection until every worker runs again.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fault_detection_latency = Histogram(
            f"{PREFIX}_jobs_fault_detection_latency",
            "Seconds from a fault until the controller acted on it.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.step_seconds = Histogram(
            "trainguard_controller_step_seconds", "Duration of one controller step.", registry=r
        )
        self.active_jobs = Gauge("trainguard_active_jobs", "Jobs not finished.", registry=r)

    def observe(self, name: str, value: float) -> None:
        """Apply one observation queued by a reconcile step (see `JobContext.metric`)."""
        kind, _, label = name.partition(":")
        if kind == "restarted":
            self.jobs_restarted.labels(restart_type=label).inc()
        elif kind == "restart_latency":
            self.restart_latency.observe(value)
        elif kind == "fault_detection_latency":
            self.fault_detection_latency.observe(value)
        elif kind == "successful":
            self.jobs_successful.inc()
        elif kind == "failed":
            self.jobs_failed.inc()
        elif kind == "deleted":
            self.jobs_deleted.inc()
        elif kind == "created":
            self.jobs_created.inc()

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` on ``host:port`` from a background thread."""
        start_http_server(port, addr=host, registry=self.registry)
