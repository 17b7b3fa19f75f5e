"""The operator's probes over real HTTP: liveness from the loop's heartbeat, readiness from
the caches."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from trainguard.operator.health import Probes, ProbeServer
from trainguard.testing.clock import FakeClock


@pytest.fixture
def served() -> Iterator[tuple[Probes, FakeClock, dict[str, bool], str]]:
    clock, synced = FakeClock(), {"value": False}
    probes = Probes(ready=lambda: synced["value"], clock=clock, stale_after=10.0)
    server = ProbeServer(probes, host="127.0.0.1", port=0)
    server.start()
    try:
        yield probes, clock, synced, f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_readyz_follows_the_cache_and_says_who_leads(
    served: tuple[Probes, FakeClock, dict[str, bool], str],
) -> None:
    probes, _, synced, url = served
    answer = httpx.get(f"{url}/readyz")
    assert answer.status_code == 503 and answer.json()["synced"] is False
    synced["value"], probes.leading = True, True
    answer = httpx.get(f"{url}/readyz")
    assert answer.status_code == 200 and answer.json() == {
        "ok": True,
        "synced": True,
        "leading": True,
    }


def test_healthz_fails_when_the_loop_stops_beating(
    served: tuple[Probes, FakeClock, dict[str, bool], str],
) -> None:
    probes, clock, _, url = served
    assert httpx.get(f"{url}/healthz").status_code == 200
    clock.advance(11)
    stale = httpx.get(f"{url}/healthz")
    assert stale.status_code == 503 and stale.json()["loop_seconds_since_beat"] == 11.0
    probes.beat()
    assert httpx.get(f"{url}/livez").status_code == 200


def test_unknown_route_is_404(served: tuple[Probes, FakeClock, dict[str, bool], str]) -> None:
    assert httpx.get(f"{served[3]}/metrics").status_code == 404
