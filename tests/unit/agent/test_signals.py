"""``POST /trainguard/signal`` signals the agent's own processes only, behind its token."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.agentapp import AppControls, app_client
from trainguard.agent import signals

AUTH = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    """The app of an agent that is this test process (its children are the agent's)."""
    controls = AppControls(pid=os.getpid())
    with app_client(controls, token="s3cret", routers=[signals.signal_router()]) as served:
        yield served


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A process of "this agent" (the test process plays the agent)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def test_a_descendant_is_signalled(client: TestClient, child: subprocess.Popen[bytes]) -> None:
    response = client.post(
        signals.SIGNAL_PATH, json={"pid": child.pid, "signal": "SIGKILL"}, headers=AUTH
    )
    assert (response.status_code, response.json()) == (200, {"pid": child.pid, "signal": "SIGKILL"})
    assert child.wait(timeout=10) == -signal.SIGKILL


def test_a_foreign_pid_is_refused_with_403_and_not_signalled(client: TestClient) -> None:
    parent = os.getppid()  # alive, and no descendant of ours
    response = client.post(
        signals.SIGNAL_PATH, json={"pid": parent, "signal": "KILL"}, headers=AUTH
    )
    assert response.status_code == 403
    assert str(parent) in response.json()["detail"]


def test_without_the_token_nothing_happens(
    client: TestClient, child: subprocess.Popen[bytes]
) -> None:
    response = client.post(signals.SIGNAL_PATH, json={"pid": child.pid, "signal": "SIGKILL"})
    assert response.status_code == 401
    assert child.poll() is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pid": 1, "signal": "SIGNOPE"}, "signal"),
        ({"pid": 0, "signal": 9}, "pid"),
        ({"signal": 9}, "pid"),
    ],
)
def test_a_bad_body_is_422_naming_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    response = client.post(signals.SIGNAL_PATH, json=body, headers=AUTH)
    assert response.status_code == 422
    assert field in str(response.json())


def test_the_agent_itself_is_signalled_after_the_answer(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(signals.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    response = client.post(
        signals.SIGNAL_PATH, json={"pid": os.getpid(), "signal": 9}, headers=AUTH
    )
    assert response.status_code == 200
    assert sent == [(os.getpid(), signal.SIGKILL)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("SIGSTOP", signal.SIGSTOP),
        ("term", signal.SIGTERM),
        ("9", signal.SIGKILL),
        (15, signal.SIGTERM),
    ],
)
def test_signal_names_and_numbers(value: str | int, expected: signal.Signals) -> None:
    assert signals.to_signal(value) is expected
