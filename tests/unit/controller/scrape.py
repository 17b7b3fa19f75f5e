"""Scrape a controller's ``/metrics`` over real HTTP and read samples by name and labels."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.ports import free_port
from trainguard.metrics import Metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Scraper:
    """GET /metrics of ``metrics``' registry, served on a real port (`Metrics.serve`)."""

    def __init__(self, metrics: Metrics) -> None:
        self.port = free_port()
        self.server = metrics.serve(self.port)

    def samples(self) -> Samples:
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10).text
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples().get((name, frozenset(labels.items())))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
