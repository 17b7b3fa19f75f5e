"""Prometheus metrics of an MTC server (``GET /metrics``), on a registry of its own.

Named ``trainguard_mtc_*`` beside our other ``trainguard_*`` metrics. Each server owns its
registry, so several servers in one process (tests) never share counters.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

PREFIX = "trainguard_mtc"
SIZE_BUCKETS = tuple(float(1 << n) for n in range(10, 36, 2))
"""Shard sizes from 1 KiB to 32 GiB, a factor of 4 apart."""
TIME_BUCKETS = Histogram.DEFAULT_BUCKETS
"""prometheus_client's default seconds buckets (5 ms to 10 s)."""

disable_created_metrics()  # type: ignore[no-untyped-call]  # as trainguard.metrics does


class MtcMetrics:
    """The server's counters, gauges and histograms (``trainguard_mtc_<name>``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        count, gauge = self._counter, self._gauge
        self.requests = count(
            "requests_total", "API requests by operation and status code.", ("operation", "code")
        )
        self.shard_bytes = self._histogram("shard_bytes", "Size of shards stored.", SIZE_BUCKETS)
        self.put_seconds = self._histogram(
            "put_seconds", "Seconds to commit a shard (and replicate it).", TIME_BUCKETS
        )
        self.memory_used = gauge("memory_used_bytes", "Committed shard bytes on this node.")
        self.memory_limit = gauge("memory_limit_bytes", "Committed shard bytes allowed.")
        self.replicated = count("replicated_total", "Shards copied to the ring's next server.")
        self.peer_reads = count("peer_reads_total", "Shards served from a peer's replica.")
        self.corrupt = count("corrupt_total", "Local shards refused by their checksum.")
        self.rejected_full = count(
            "rejected_full_total", "Shards refused for lack of memory (507)."
        )
        self.peer_errors = gauge("peer_errors", "Calls to peer servers that failed since start.")
        self.peers = gauge("peers", "Other servers this one knows (given or resolved).")

    def _counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(f"{PREFIX}_{name}", documentation, labels, registry=self.registry)

    def _gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(f"{PREFIX}_{name}", documentation, registry=self.registry)

    def _histogram(self, name: str, documentation: str, buckets: tuple[float, ...]) -> Histogram:
        return Histogram(f"{PREFIX}_{name}", documentation, buckets=buckets, registry=self.registry)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
