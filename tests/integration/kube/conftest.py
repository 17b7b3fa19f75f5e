"""A fake API server per test, and an httpx client that carries its token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from trainguard.testing.kube import KubeApiServer


@pytest.fixture
def server() -> Iterator[KubeApiServer]:
    with KubeApiServer(bookmark_interval=0.2) as started:
        yield started


@pytest.fixture
def client(server: KubeApiServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
        yield http
