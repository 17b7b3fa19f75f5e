"""The controller over real HTTP: agent clients, fake agents on a server, pushed statuses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.unit.controller.harness import BASE
from trainguard import constants as c
from trainguard.agent.protocol import AgentState, AgentStatus
from trainguard.controller.deps import ControllerSettings
from trainguard.controller.loop import Controller
from trainguard.controller.state import JobPhase, JobState
from trainguard.controller.submit import submit
from trainguard.spec import HyperPodPyTorchJob
from trainguard.store import NodeRecord, SqliteStore
from trainguard.testing import FakeAgentServer, HttpFakeBackend


@pytest.fixture
def server() -> Iterator[FakeAgentServer]:
    fakes = FakeAgentServer()
    fakes.start()
    yield fakes
    fakes.stop()


def make_controller(
    tmp_path: Path, server: FakeAgentServer
) -> tuple[Controller, HttpFakeBackend, SqliteStore]:
    store = SqliteStore(tmp_path / "state.db")
    for index in range(3):
        store.save_node(NodeRecord(f"node-{index}", {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}))
    backend = HttpFakeBackend(store, server)
    controller = Controller(
        store=store, backend=backend, settings=ControllerSettings(poll_interval=0.2)
    )
    controller.start()
    return controller, backend, store


def step_until(controller: Controller, phase: JobPhase, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while controller.step().get("default/train") is not phase:
        assert time.monotonic() < deadline, f"never reached {phase}"
        time.sleep(0.05)


def test_lifecycle_over_http_with_a_crash(tmp_path: Path, server: FakeAgentServer) -> None:
    controller, backend, store = make_controller(tmp_path, server)
    try:
        submit(store, HyperPodPyTorchJob.model_validate(BASE), now=time.time())
        step_until(controller, JobPhase.RUNNING)
        pods = store.list_pods("default", "train")
        backend.agents[pods[1].name].crash(now=time.time())
        step_until(controller, JobPhase.RESTARTING)
        step_until(controller, JobPhase.RUNNING)
        assert backend.agents[pods[0].name].starts[-1].fault_count == 1
        for pod in pods:
            backend.agents[pod.name].finish()
        step_until(controller, JobPhase.COMPLETED)
    finally:
        controller.close()


def test_callbacks_need_the_job_token_and_wake_the_loop(
    tmp_path: Path, server: FakeAgentServer
) -> None:
    controller, _, store = make_controller(tmp_path, server)
    try:
        record = submit(store, HyperPodPyTorchJob.model_validate(BASE), now=time.time())
        step_until(controller, JobPhase.RUNNING)
        pod = store.list_pods("default", "train")[0].name
        token = JobState.model_validate(store.get_job("default", "train").state).token
        assert controller.deps.callback_url is not None
        body = {
            "pod": pod,
            "status": AgentStatus(status=AgentState.FAULTED, reason="WorkerCrash").to_wire(),
        }
        wrong = httpx.post(
            controller.deps.callback_url, json=body, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        seen = controller.hub.seen(pod)
        assert (
            seen is not None
            and seen.status is not None
            and seen.status.status is AgentState.RUNNING
        )
        controller.hub.wakeup.clear()
        right = httpx.post(
            controller.deps.callback_url, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert right.status_code == 200
        assert controller.hub.wakeup.is_set()
        seen = controller.hub.seen(pod)
        assert (
            seen is not None
            and seen.status is not None
            and seen.status.status is AgentState.FAULTED
        )
        assert record.uid
    finally:
        controller.close()


def test_a_second_controller_is_refused_while_the_first_lives(
    tmp_path: Path, server: FakeAgentServer
) -> None:
    from trainguard.errors import ConflictError

    first, backend, store = make_controller(tmp_path, server)
    try:
        second = Controller(store=store, backend=backend, serve_callbacks=False)
        with pytest.raises(ConflictError):
            second.start()
    finally:
        first.close()
