"""The agent protocol models accept what HyperPod's operator sends and enforce the state table."""

from __future__ import annotations

import pytest

from trainguard.agent.protocol import (
    TRANSITIONS,
    AgentState,
    AgentStatus,
    StartRequest,
    StopRequest,
    check_transition,
)
from trainguard.errors import InvalidTransition


def test_start_request_as_hyperpod_sends_it() -> None:
    body = {
        "rank": 1,
        "nnodes": 2,
        "faultCount": 0,
        "master_addr": "10.0.0.1",
        "master_port": "",
        "ipVersion": "2026-11-23T10:00:00Z",
        "rankIps": [{"rank": 0, "ip": "10.0.0.1"}, {"rank": 1, "ip": "10.0.0.2"}],
        "spare": 0,
        "progress": {"ckpt": {"progressData": "/fsx/ckpt/step_100", "progressCount": 100}},
        "somethingNewer": True,
    }
    request = StartRequest.model_validate(body)
    assert (request.rank, request.nnodes, request.fault_count, request.master_port) == (1, 2, 0, 0)
    assert request.spare is False
    assert request.rank_ips is not None and request.rank_ips[1].ip == "10.0.0.2"
    assert request.trainguard is None


def test_stop_request_defaults() -> None:
    stop = StopRequest.model_validate({})
    assert (stop.restart_mode, stop.is_graceful, stop.timeout) == ("ipr", None, None)
    nulls = StopRequest.model_validate({"restart_mode": None, "is_graceful": None})
    assert (nulls.restart_mode, nulls.is_graceful) == ("ipr", None)


def test_status_wire_form_leaves_out_unset_keys() -> None:
    status = AgentStatus(
        status=AgentState.FAULTED, reason="WorkerCrash", restart_mode="process_level_restart"
    )
    assert status.to_wire() == {
        "status": "faulted",
        "transitions": {},
        "reason": "WorkerCrash",
        "restartMode": "process_level_restart",
    }


@pytest.mark.parametrize("current", list(AgentState))
def test_every_pair_follows_the_table(current: AgentState) -> None:
    for target in AgentState:
        if target in TRANSITIONS[current]:
            assert check_transition(current, target) is target
        else:
            with pytest.raises(InvalidTransition):
                check_transition(current, target)


def test_plr_table_matches_hyperpod() -> None:
    s = AgentState
    assert TRANSITIONS[s.STOPPING] == {s.READY, s.SHUTDOWN}
    assert TRANSITIONS[s.RUNNING] == {s.COMPLETED, s.FAULTED, s.STOPPING, s.SHUTDOWN}
    assert not TRANSITIONS[s.SHUTDOWN]
