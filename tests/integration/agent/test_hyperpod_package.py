"""Our agent driven with HyperPod's own package (``hyperpod-elastic-agent`` 1.1.3), side by side
with HyperPod's server app.

The package pins ``torch<2.12`` and ``pip<25.3`` and ships a ``hyperpodrun`` of its own, so it is
not a test dependency: ``.ci/run`` installs it apart (``pip install --no-deps --target
.venv/hyperpod-elastic-agent hyperpod-elastic-agent==1.1.3``), where this module finds it (or
put it on ``PYTHONPATH``); elsewhere these tests are skipped. HyperPod's server runs here on a
stand-in agent object (as its own server tests do): its routes, validation and status encoder
are the real ones.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import pytest
from fastapi.testclient import TestClient

from tests.agentapp import AppControls, app_client
from trainguard.agent.protocol import TRANSITIONS, AgentStatus
from trainguard.agent.state import AgentCore, PendingStart, PendingStop

PACKAGE_DIR = Path(sys.prefix) / "hyperpod-elastic-agent"
"""Where ``.ci/run`` installs HyperPod's package, after everything else on the path."""
if PACKAGE_DIR.is_dir() and str(PACKAGE_DIR) not in sys.path:
    sys.path.append(str(PACKAGE_DIR))

models = pytest.importorskip("hyperpod_elastic_agent.server.api_models")
hp_util = pytest.importorskip("hyperpod_elastic_agent.server.util")
hp_server = pytest.importorskip("hyperpod_elastic_agent.server.server")

START = {"rank": 0, "nnodes": 2, "faultCount": 1, "master_addr": "10.0.0.1", "master_port": "23"}


@pytest.fixture
def ours() -> Iterator[tuple[AgentCore, TestClient]]:
    controls = AppControls()
    with app_client(controls, token=None) as client:
        yield controls.core, client


@pytest.fixture
def theirs() -> TestClient:
    agent = Mock()
    agent.get_agent_state_info = Mock(
        return_value=hp_util.AgentInfo(
            state=hp_util.AgentState.READY, transitions={"INIT": "t0", "READY": "t1"}
        )
    )
    agent.version, agent.spare, agent.priority = "1.1.3", True, False
    agent.get_agent_progress = Mock(return_value=None)
    agent.get_assigned_rank = Mock(return_value=-1)
    agent.get_restart_mode = Mock(return_value="process_level_restart")
    server = hp_server.HyperPodElasticAgentServer(agent, {"host": "127.0.0.1", "port": 0})
    return TestClient(server._app)


def wire(model: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(model.model_dump_json())
    return body


def test_hyperpods_request_models_drive_our_agent(ours: tuple[AgentCore, TestClient]) -> None:
    core, client = ours
    start = models.StartRequest(**START, rankIps=[{"rank": 0, "ip": "10.0.0.1"}], ipVersion="v1")
    assert client.post("/start", json=wire(start)).status_code == 200
    pending = core.take_pending()
    assert isinstance(pending, PendingStart) and pending.request.master_port == 23
    update = models.UpdateRequest(**START | {"rank": -1})
    answer = client.post("/update", json=wire(update))
    assert answer.status_code == 200 and answer.json()["ipversion"] == "v1"
    assert client.post("/stop", json=wire(models.StopRequest())).status_code == 200
    stop = core.take_pending()
    assert isinstance(stop, PendingStop) and stop.request.is_graceful is None


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/start", START | {"master_addr": ""}),
        ("/update", START | {"master_addr": ""}),
        ("/start", {"rank": "invalid_rank", "nnodes": 1}),
        ("/start", START | {"rank": -1}),
        ("/update", START | {"rank": -1, "spare": 1}),
        ("/stop", {"restart_mode": None, "is_graceful": None}),
        ("/stop", {}),
    ],
)
def test_same_status_codes_and_messages_as_hyperpods_server(
    ours: tuple[AgentCore, TestClient], theirs: TestClient, path: str, body: dict[str, Any]
) -> None:
    _, client = ours
    mine, hyperpod = client.post(path, json=body), theirs.post(path, json=body)
    assert mine.status_code == hyperpod.status_code
    if hyperpod.status_code == 422:
        messages = {d["msg"] for d in hyperpod.json()["detail"]}
        fields = {tuple(d["loc"]) for d in hyperpod.json()["detail"]}
        assert {d["msg"] for d in mine.json()["detail"]} >= messages
        assert {tuple(d["loc"]) for d in mine.json()["detail"]} >= fields


def test_fresh_status_matches_hyperpods_but_our_extension(
    ours: tuple[AgentCore, TestClient], theirs: TestClient
) -> None:
    _, client = ours
    mine, hyperpod = client.get("/status").json(), theirs.get("/status").json()
    mine.pop("trainguard")
    assert set(mine) == set(hyperpod)
    assert {k: mine[k] for k in ("status", "spare", "restartMode")} == {
        k: hyperpod[k] for k in ("status", "spare", "restartMode")
    }
    assert set(mine["transitions"]) == set(hyperpod["transitions"])


def test_our_controller_reads_hyperpods_status() -> None:
    response = hp_util.StatusResponse(
        status=hp_util.AgentState.FAULTED,
        transitions={hp_util.AgentState.INIT: "t0", hp_util.AgentState.FAULTED: "t1"},
        agent_version="1.1.3",
        reason="WorkerCrash",
        message="Local Rank 0 exited with code 1",
        ip_version="v1",
        assigned_rank="0",
        spare="True",
        restart_mode="process_level_restart",
    )
    text = json.dumps(response, cls=hp_util.StatusResponseJSONEncoder)
    status = AgentStatus.model_validate_json(text)
    assert status.status.value == "faulted" and status.trainguard is None
    assert status.to_wire() == json.loads(text)


def test_transition_tables_differ_only_by_the_documented_edge() -> None:
    hyperpod = {
        s.value: {t.value for t in targets} for s, targets in hp_util.PLR_VALID_TRANSITIONS.items()
    }
    mine = {s.name: {t.name for t in targets} for s, targets in TRANSITIONS.items()}
    assert {s: mine[s] - hyperpod[s] for s in mine if mine[s] != hyperpod[s]} == {
        "STOPPING": {"SHUTDOWN"}
    }
