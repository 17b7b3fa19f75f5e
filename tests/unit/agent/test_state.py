"""AgentCore: the state table, /start and /stop bookkeeping, faults and announcements."""

from __future__ import annotations

import pytest

from trainguard.agent.protocol import (
    AgentState,
    StartRequest,
    StopRequest,
    UpdateRequest,
    WorkerFailure,
)
from trainguard.agent.state import AgentCore, PendingStart, PendingStop
from trainguard.errors import ConflictError
from trainguard.testing import FakeClock

START = {"rank": 1, "nnodes": 2, "faultCount": 3, "master_addr": "10.0.0.1", "master_port": "99"}


def core() -> tuple[AgentCore, list[AgentState]]:
    agent = AgentCore(clock=FakeClock(), pod="pod-1", pid=42)
    seen: list[AgentState] = []
    agent.add_listener(lambda status: seen.append(status.status))
    return agent, seen


def failure(rank: int) -> WorkerFailure:
    return WorkerFailure(local_rank=rank, global_rank=rank + 2, exitcode=-9, time=1.0)


def test_start_runs_at_once_and_hands_the_launch_to_the_loop() -> None:
    agent, seen = core()
    agent.request_start(StartRequest.model_validate(START))
    assert agent.state is AgentState.RUNNING and seen == [AgentState.RUNNING]
    pending = agent.take_pending()
    assert isinstance(pending, PendingStart) and pending.request.master_port == 99
    assert agent.take_pending() is None
    status = agent.snapshot()
    assert status.assigned_rank == "1" and status.reason == "Running"
    assert status.trainguard is not None and status.trainguard.fault_count == 3
    assert set(status.transitions) == {"INIT", "READY", "RUNNING"}


def test_forbidden_requests_conflict_and_change_nothing() -> None:
    agent, seen = core()
    agent.request_start(StartRequest.model_validate(START))
    agent.take_pending()
    assert agent.fault(reason="WorkerCrash", message="boom", failures=[])
    with pytest.raises(ConflictError):
        agent.request_start(StartRequest.model_validate(START))
    assert agent.state is AgentState.FAULTED and seen == [AgentState.RUNNING, AgentState.FAULTED]


def test_repeated_start_stop_and_shutdown_change_nothing_but_the_rendezvous() -> None:
    agent, seen = core()
    agent.request_stop(StopRequest())
    assert agent.state is AgentState.READY and agent.take_pending() is None
    agent.request_start(StartRequest.model_validate(START))
    agent.take_pending()
    agent.request_start(StartRequest.model_validate(START | {"rank": 0, "progress": {"a": 1}}))
    assert agent.take_pending() is None, "the running workers are left alone"
    assert agent.snapshot().assigned_rank == "0" and agent.start_progress == {"a": 1}
    agent.request_shutdown(StopRequest())
    agent.request_shutdown(StopRequest())
    assert seen == [AgentState.RUNNING, AgentState.SHUTDOWN]


def test_a_start_without_rank_waits_for_an_update_with_one() -> None:
    agent, _ = core()
    agent.request_start(StartRequest.model_validate(START | {"rank": -1, "progress": {"p": 1}}))
    assert agent.state is AgentState.RUNNING and agent.take_pending() is None
    assert agent.snapshot().assigned_rank is None
    agent.update(StartRequest.model_validate(START | {"rank": 5}))
    pending = agent.take_pending()
    assert isinstance(pending, PendingStart)
    assert (pending.request.rank, pending.request.progress) == (5, {"p": 1})
    assert agent.snapshot().assigned_rank is None, "only /start assigns a rank, as in HyperPod"


def test_fault_keeps_the_first_root_cause_and_appends_later_failures() -> None:
    agent, seen = core()
    assert not agent.fault(reason="WorkerCrash", message="early", failures=[failure(0)])
    agent.request_start(StartRequest.model_validate(START))
    assert agent.fault(reason="WorkerCrash", message="first", failures=[failure(1)])
    assert not agent.fault(reason="LogHang_x", message="later", failures=[failure(0)])
    status = agent.snapshot()
    assert status.status is AgentState.FAULTED and status.message == "first"
    assert [f.local_rank for f in status.trainguard.failures] == [1, 0]  # type: ignore[union-attr]
    assert status.trainguard.detected_at is not None  # type: ignore[union-attr]
    assert seen == [AgentState.RUNNING, AgentState.FAULTED]


def test_stop_then_ready_then_start_clears_the_fault() -> None:
    agent, _ = core()
    agent.request_start(StartRequest.model_validate(START))
    agent.take_pending()
    agent.fault(reason="WorkerCrash", message="boom", failures=[failure(1)])
    agent.request_stop(StopRequest(timeout=3))
    pending = agent.take_pending()
    assert isinstance(pending, PendingStop) and pending.then is AgentState.READY
    assert agent.move(AgentState.READY, reason=None)
    assert not agent.move(AgentState.COMPLETED, reason="nope")
    agent.request_start(StartRequest.model_validate(START | {"faultCount": 4}))
    status = agent.snapshot()
    assert status.trainguard is not None and status.trainguard.failures == []
    assert status.trainguard.fault_count == 4


def test_shutdown_is_final() -> None:
    agent, _ = core()
    agent.request_shutdown(StopRequest())
    pending = agent.take_pending()
    assert isinstance(pending, PendingStop) and pending.then is AgentState.SHUTDOWN
    with pytest.raises(ConflictError):
        agent.request_start(StartRequest.model_validate(START))
    with pytest.raises(ConflictError):
        agent.request_stop(StopRequest())


def test_unknown_fact_is_an_error() -> None:
    agent, _ = core()
    agent.set_facts(worker_pids=[5, 6])
    assert agent.snapshot().trainguard.worker_pids == [5, 6]  # type: ignore[union-attr]
    with pytest.raises(AttributeError):
        agent.set_facts(bogus=1)


def test_every_request_that_leaves_work_for_the_loop_wakes_it() -> None:
    agent, _ = core()
    woken: list[str] = []
    agent.wakeup = lambda: woken.append(agent.state.value)
    agent.request_start(StartRequest.model_validate(START | {"rank": -1}))  # waits for a rank
    agent.update(UpdateRequest.model_validate(START))  # brings one
    agent.request_stop(StopRequest())
    agent.request_stop(StopRequest())  # stopping already: nothing to do, no wake-up
    agent.request_shutdown(StopRequest())
    assert woken == ["running", "running", "stopping", "shutdown"]
    assert isinstance(agent.take_pending(), PendingStop)
