"""Protocol conformance with HyperPod's elastic agent (``hyperpod-elastic-agent`` 1.1.3).

Every field and status code here is what that package's server answers (read from its
``server/server.py``, ``server/api_models.py``, ``server/util.py``, its PLR agent and its own
server tests), so a client written against it drives ours unchanged. Our additions (bearer
auth, the ``trainguard`` status object) are checked to be strictly additive. Where we differ on
purpose, docs/agent.md ("Compatibility with HyperPod's agent") says why; those cases are pinned
too. The HTTP cases run the real app in-process; the loop cases (plain stop, completion) run a
real agent process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.agentapp import AppControls, app_client
from tests.integration.agent.harness import SCRIPTS, TOKEN, agents
from trainguard.agent.protocol import TRANSITIONS, AgentState
from trainguard.agent.state import AgentCore, PendingStart

AUTH = {"Authorization": f"Bearer {TOKEN}"}
START = {"rank": 0, "nnodes": 1, "faultCount": 0, "master_addr": "10.0.0.1", "master_port": "23"}
TABLE = {"ipVersion": "2025-01-10T12:00:00Z", "rankIps": [{"rank": 0, "ip": "10.0.0.1"}]}
EMPTY_MASTER = "Empty master_addr received from operator"
# HyperPod's PLR_VALID_TRANSITIONS, written out (upper-case names as in its enum)
HYPERPOD_PLR = {
    "INIT": {"READY", "SHUTDOWN"},
    "READY": {"RUNNING", "SHUTDOWN"},
    "RUNNING": {"COMPLETED", "FAULTED", "STOPPING", "SHUTDOWN"},
    "FAULTED": {"STOPPING", "SHUTDOWN"},
    "STOPPING": {"READY"},
    "COMPLETED": {"SHUTDOWN", "STOPPING"},
    "SHUTDOWN": set(),
}
HYPERPOD_STATUS_KEYS = {
    "status", "transitions", "reason", "message", "restartMode", "worker_data", "rank_labels",
    "ipversion", "progress", "agent_version", "assigned_rank", "spare", "priority",
}  # fmt: skip


@pytest.fixture
def agent() -> Iterator[tuple[AgentCore, TestClient]]:
    controls = AppControls()
    with app_client(controls, token=TOKEN, authorized=True) as client:
        yield controls.core, client


def post_raw(client: TestClient, path: str, body: dict[str, Any]) -> Any:
    """POST ``body`` as HyperPod's own tests do: JSON text, no Content-Type header."""
    return client.post(path, content=json.dumps(body))


def status(client: TestClient) -> dict[str, Any]:
    answer = client.get("/status")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


# --- requests -----------------------------------------------------------------------------


def test_bodies_without_content_type_are_read_as_json(agent: tuple[AgentCore, TestClient]) -> None:
    core, client = agent
    answer = post_raw(client, "/start", START)
    assert (answer.status_code, answer.content) == (200, b"")
    assert core.state is AgentState.RUNNING
    assert post_raw(client, "/stop", {"restart_mode": "ipr"}).status_code == 200
    assert core.state is AgentState.STOPPING


@pytest.mark.parametrize("path", ["/start", "/update"])
def test_rank_minus_one_is_accepted(agent: tuple[AgentCore, TestClient], path: str) -> None:
    _, client = agent
    assert post_raw(client, path, START | {"rank": -1}).status_code == 200
    assert "assigned_rank" not in status(client)
    assert post_raw(client, path, START | {"rank": -2}).status_code == 422


def test_a_start_without_rank_launches_once_an_update_brings_one(
    agent: tuple[AgentCore, TestClient],
) -> None:
    core, client = agent
    post_raw(client, "/start", START | {"rank": -1})
    assert status(client)["status"] == "running" and core.take_pending() is None
    post_raw(client, "/update", START | {"rank": 2})
    pending = core.take_pending()
    assert isinstance(pending, PendingStart) and pending.request.rank == 2


def test_stop_accepts_null_fields_with_hyperpod_defaults(
    agent: tuple[AgentCore, TestClient],
) -> None:
    core, client = agent
    post_raw(client, "/start", START)
    core.take_pending()
    nulls = {"restart_mode": None, "is_graceful": None, "timeout": None}
    assert post_raw(client, "/stop", nulls).status_code == 200
    stop = core.take_pending()
    assert stop is not None and not isinstance(stop, PendingStart)
    assert (stop.request.restart_mode, stop.request.is_graceful) == ("ipr", None)


@pytest.mark.parametrize("path", ["/start", "/update"])
def test_an_empty_master_addr_is_refused_with_hyperpods_message(
    agent: tuple[AgentCore, TestClient], path: str
) -> None:
    core, client = agent
    answer = post_raw(client, path, START | {"master_addr": "", "master_port": ""})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert any("master_addr" in str(d["loc"]) and EMPTY_MASTER in d["msg"] for d in detail)
    assert core.state is AgentState.READY


def test_a_bad_field_is_422_naming_it(agent: tuple[AgentCore, TestClient]) -> None:
    _, client = agent
    answer = post_raw(client, "/update", {"rank": "invalid_rank", "nnodes": 1})
    assert answer.status_code == 422
    fields = {d["loc"][1] for d in answer.json()["detail"] if len(d["loc"]) > 1}
    assert {"rank", "faultCount", "master_addr", "master_port"} <= fields


def test_spare_and_master_port_convert_as_hyperpod_does(
    agent: tuple[AgentCore, TestClient],
) -> None:
    core, client = agent
    assert status(client)["spare"] == "True", "nobody told it yet: a spare"
    post_raw(client, "/update", START | {"spare": 0})
    assert status(client)["spare"] == "False"
    assert core.rendezvous is not None and core.rendezvous.master_port == 23
    post_raw(client, "/update", START | {"spare": 1})
    assert status(client)["spare"] == "True"


# --- idempotence --------------------------------------------------------------------------


def test_start_while_running_is_200_and_leaves_the_workers(
    agent: tuple[AgentCore, TestClient],
) -> None:
    core, client = agent
    post_raw(client, "/start", START)
    core.take_pending()
    again = START | {"rank": 3, "master_addr": "10.0.0.9", "progress": {"x": {"progressCount": 7}}}
    answer = post_raw(client, "/start", again)
    assert (answer.status_code, answer.content) == (200, b"")
    assert core.take_pending() is None, "no second launch"
    assert status(client)["assigned_rank"] == "3"
    assert core.rendezvous is not None and core.rendezvous.master_addr == "10.0.0.9"
    assert core.start_progress == {"x": {"progressCount": 7}}


def test_stop_while_ready_or_stopping_is_200_and_does_nothing(
    agent: tuple[AgentCore, TestClient],
) -> None:
    core, client = agent
    before = status(client)
    assert client.post("/stop").status_code == 200
    assert status(client) == before and core.take_pending() is None
    post_raw(client, "/start", START)
    core.take_pending()
    assert client.post("/stop").status_code == 200
    assert client.post("/stop").status_code == 200
    assert core.state is AgentState.STOPPING


def test_requests_the_table_forbids_are_409(agent: tuple[AgentCore, TestClient]) -> None:
    core, client = agent
    post_raw(client, "/start", START)
    core.take_pending()
    core.fault(reason="WorkerCrash", message="boom", failures=[])
    assert post_raw(client, "/start", START).status_code == 409
    assert client.post("/shutdown").status_code == 200
    assert client.post("/shutdown").status_code == 200
    assert client.post("/stop").status_code == 409


# --- status -------------------------------------------------------------------------------


def test_fresh_status_has_hyperpods_keys_and_init_transition(
    agent: tuple[AgentCore, TestClient],
) -> None:
    _, client = agent
    body = status(client)
    assert body["status"] == "ready"
    assert set(body["transitions"]) == {"INIT", "READY"}
    assert body["restartMode"] == "process_level_restart"
    assert isinstance(body["agent_version"], str) and body["spare"] == "True"
    assert set(body) - HYPERPOD_STATUS_KEYS == {"trainguard"}, "ours is one extra object"
    assert not {"reason", "message", "assigned_rank", "ipversion"} & set(body)


def test_assigned_rank_comes_from_start_only(agent: tuple[AgentCore, TestClient]) -> None:
    core, client = agent
    post_raw(client, "/update", START | {"rank": 4})
    assert "assigned_rank" not in status(client)
    post_raw(client, "/start", START | {"rank": 1})
    core.take_pending()
    assert status(client)["assigned_rank"] == "1"
    updated = post_raw(client, "/update", START | {"rank": 5}).json()
    assert updated["assigned_rank"] == "1" and updated["status"] == "running"


def test_ipversion_is_kept_until_a_new_ip_table_arrives(
    agent: tuple[AgentCore, TestClient],
) -> None:
    _, client = agent
    assert post_raw(client, "/update", START | TABLE).json()["ipversion"] == TABLE["ipVersion"]
    assert status(client)["ipversion"] == TABLE["ipVersion"]
    post_raw(client, "/update", START)
    post_raw(client, "/update", START | {"ipVersion": "v-no-table"})
    assert status(client)["ipversion"] == TABLE["ipVersion"]
    post_raw(client, "/update", START | {"ipVersion": "v2", "rankIps": []})
    assert status(client)["ipversion"] == "v2"


def test_running_reason_and_no_reason_after_a_stop(agent: tuple[AgentCore, TestClient]) -> None:
    core, client = agent
    post_raw(client, "/start", START)
    core.take_pending()
    assert status(client)["reason"] == "Running"
    client.post("/stop")
    assert "reason" not in status(client)


def test_transition_table_is_hyperpods_plus_one_documented_edge() -> None:
    ours = {s.name: {t.name for t in targets} for s, targets in TRANSITIONS.items()}
    extra = {s: ours[s] - HYPERPOD_PLR[s] for s in ours}
    assert {s: t for s, t in extra.items() if t} == {"STOPPING": {"SHUTDOWN"}}
    assert all(HYPERPOD_PLR[s] <= ours[s] for s in ours)


def test_bearer_auth_is_our_only_refusal_hyperpod_lacks(
    agent: tuple[AgentCore, TestClient],
) -> None:
    core, client = agent
    answer = client.post("/start", content=json.dumps(START), headers={"Authorization": ""})
    assert answer.status_code == 401 and core.state is AgentState.READY


# --- the loop (a real agent process) ------------------------------------------------------


def _argv(*worker_args: str) -> list[str]:
    return ["--nproc-per-node=1", "--nnodes=1", str(SCRIPTS / "agent_worker.py"), *worker_args]


@pytest.mark.slow
def test_completion_and_plain_stop_carry_no_reason(tmp_path: Path) -> None:
    with agents(tmp_path, 1, _argv("--steps", "1")) as (pod,):
        pod.start(0, 1, 1)
        done = pod.wait_state(AgentState.COMPLETED)
        assert done.reason is None and done.message is None
        assert set(done.transitions) == {"INIT", "READY", "RUNNING", "COMPLETED"}
        pod.client.stop()
        ready = pod.wait_state(AgentState.READY)
        assert ready.reason is None
        assert set(ready.transitions) >= {"STOPPING", "READY"}
