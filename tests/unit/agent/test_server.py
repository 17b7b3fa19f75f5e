"""The HTTP app: bearer auth before anything else, 409/422/404 mapping, HyperPod's shapes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from tests.agentapp import AppControls, app_client
from trainguard.agent.protocol import AgentState
from trainguard.agent.server import build_app
from trainguard.errors import NotFoundError

START = {"rank": 0, "nnodes": 1, "faultCount": 0, "master_addr": "h", "master_port": 1}
AUTH = {"Authorization": "Bearer s3cret"}


class Controls(AppControls):
    """Rank 3 runs here and has ``tail`` lines in each stream."""

    def logs(self, *, rank: int, tail: int, stream: str) -> list[str]:
        if rank != 3:
            raise NotFoundError(f"rank {rank} does not run on this agent")
        return [f"{stream} {i}" for i in range(tail)]


@pytest.fixture
def agent() -> Iterator[tuple[Controls, TestClient]]:
    controls = Controls()
    extra = APIRouter()

    @extra.get("/replicas")
    def replicas() -> dict[str, int]:
        return {"count": 0}

    with app_client(controls, token="s3cret", routers=[extra]) as client:
        yield controls, client


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "s3cret"}]
)
def test_every_route_refuses_a_missing_or_wrong_token(
    agent: tuple[Controls, TestClient], headers: dict[str, str]
) -> None:
    controls, client = agent
    for method, path, body in [
        ("POST", "/start", START),
        ("POST", "/start", {"garbage": True}),
        ("POST", "/stop", None),
        ("POST", "/update", START),
        ("POST", "/shutdown", None),
        ("GET", "/status", None),
        ("GET", "/logs?rank=3", None),
        ("GET", "/replicas", None),
        ("GET", "/openapi.json", None),
    ]:
        answer = client.request(method, path, json=body, headers=headers)
        assert answer.status_code == 401, (method, path)
    assert controls.core.state is AgentState.READY
    assert controls.core.take_pending() is None


def test_lifecycle_over_the_api(agent: tuple[Controls, TestClient]) -> None:
    controls, client = agent
    assert client.get("/status", headers=AUTH).json()["status"] == "ready"
    assert client.post("/stop", headers=AUTH).status_code == 200  # HyperPod's idempotent stop
    answer = client.post("/start", json=START, headers=AUTH)
    assert answer.status_code == 200 and answer.content == b""
    assert client.post("/start", json=START, headers=AUTH).status_code == 200
    table = {"ipVersion": "v7", "rankIps": [{"rank": 0, "ip": "h"}]}
    updated = client.post("/update", json=START | table, headers=AUTH).json()
    assert updated["status"] == "running" and updated["ipversion"] == "v7"
    assert client.post("/stop", json={"timeout": 5}, headers=AUTH).status_code == 200
    assert controls.core.state is AgentState.STOPPING
    assert client.post("/shutdown", headers=AUTH).status_code == 200
    assert client.get("/status", headers=AUTH).json()["status"] == "shutdown"


def test_bad_bodies_and_rules_are_422_naming_the_field(agent: tuple[Controls, TestClient]) -> None:
    controls, client = agent
    assert client.post("/start", json={"rank": 0}, headers=AUTH).status_code == 422
    rules = [{"name": "R", "logPattern": "x", "metricThreshold": 0.5}]
    answer = client.post(
        "/start", json=START | {"log_monitoring_configuration": rules}, headers=AUTH
    )
    assert answer.status_code == 422
    assert "log_monitoring_configuration[0].operator" in answer.text
    assert controls.core.state is AgentState.READY


def test_logs_route(agent: tuple[Controls, TestClient]) -> None:
    _, client = agent
    body = client.get("/logs?rank=3&tail=2&stream=stderr", headers=AUTH).json()
    assert body == {"rank": 3, "lines": ["stderr 0", "stderr 1"]}
    assert client.get("/logs?rank=0", headers=AUTH).status_code == 404
    assert client.get("/logs?rank=3&stream=nope", headers=AUTH).status_code == 422
    assert client.get("/replicas", headers=AUTH).json() == {"count": 0}


def test_insecure_app_needs_no_token() -> None:
    with TestClient(build_app(Controls(), token=None)) as client:
        assert client.get("/status").status_code == 200
