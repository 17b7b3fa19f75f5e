"""The controller's callback endpoint, served for real on 127.0.0.1.

Reproduces two reports: a job deleted and re-created under the same name got 401 on every
status push (tokens were cached by pod name), and the endpoint parsed the body before checking
the token, so anyone could make it read 100 MB.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration import rawhttp
from tests.unit.store.test_contract import job as stored_job
from trainguard.agent.callback import CallbackPusher
from trainguard.agent.protocol import AgentState, AgentStatus
from trainguard.controller.agents import AgentHub
from trainguard.controller.callbacks import CALLBACK_PATH, CallbackServer, callback_app
from trainguard.controller.state import JobState
from trainguard.httpguard import HEADER_TIMEOUT_S, MAX_QUOTE_CHARS
from trainguard.store.records import PodRecord
from trainguard.store.sqlite import SqliteStore

POD = "train-worker-0"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[SqliteStore, AgentHub, str]]:
    store = SqliteStore(tmp_path / "state.db")
    hub = AgentHub()
    server = CallbackServer(callback_app(store, hub))
    url = server.start()
    yield store, hub, url
    server.stop()
    hub.close()
    store.close()


def _create(store: SqliteStore, name: str = "train", pod: str = POD) -> str:
    """A job with one pod, as `submit` and the pod maker store them; returns its token."""
    token = secrets.token_urlsafe(32)
    record = stored_job(name)
    record.uid, record.state = str(uuid.uuid4()), JobState(token=token)
    store.create_job(record)
    store.save_pod(PodRecord("default", pod, name, "node-0", "worker", 0))
    return token


def _push(url: str, token: str, state: AgentState, pod: str = POD) -> int:
    """One push through the agent's real pusher; 1 if it was accepted, else 0."""
    pusher = CallbackPusher(pod=pod, token=token, url=lambda: url)
    pusher(AgentStatus(status=state))
    pusher.close(timeout=10)
    return pusher.sent


def test_a_re_created_job_is_accepted_and_the_deleted_one_refused(
    served: tuple[SqliteStore, AgentHub, str],
) -> None:
    store, hub, url = served
    old = _create(store)
    assert _push(url, old, AgentState.RUNNING) == 1
    store.remove_job("default", "train")  # what the controller does once a deletion is done
    new = _create(store)
    assert _push(url, new, AgentState.COMPLETED) == 1
    seen = hub.seen(POD)
    assert seen is not None and seen.status is not None
    assert seen.status.status is AgentState.COMPLETED
    assert _push(url, old, AgentState.FAULTED) == 0  # the deleted job's agent is refused
    assert hub.seen(POD).status.status is AgentState.COMPLETED  # type: ignore[union-attr]


def test_a_token_only_speaks_for_the_pods_of_its_job(
    served: tuple[SqliteStore, AgentHub, str],
) -> None:
    store, hub, url = served
    _create(store, "victim", "victim-worker-0")
    other = _create(store, "other", "other-worker-0")
    assert _push(url, other, AgentState.FAULTED, pod="victim-worker-0") == 0
    assert hub.seen("victim-worker-0") is None
    assert _push(url, "", AgentState.FAULTED, pod="victim-worker-0") == 0


def test_a_wrong_token_gets_401_before_the_body_is_sent(
    served: tuple[SqliteStore, AgentHub, str],
) -> None:
    store, _, url = served
    _create(store)
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    for token in ("wrong", None):
        request = rawhttp.head(CALLBACK_PATH, token=token, length=100 * rawhttp.MB)
        assert rawhttp.status_of(rawhttp.send(port, request, timeout=10)) == 401


def test_a_big_body_gets_413_and_a_bad_one_a_short_422(
    served: tuple[SqliteStore, AgentHub, str],
) -> None:
    store, _, url = served
    token = _create(store)
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    request = rawhttp.head(CALLBACK_PATH, token=token, length=100 * rawhttp.MB)
    answer = rawhttp.send(port, request, rawhttp.json_body(100 * rawhttp.MB))
    assert rawhttp.status_of(answer) == 413, answer[:300]
    bad = {"pod": POD, "status": {"status": "x" * 500_000}}
    answer2 = httpx.post(url, json=bad, headers={"Authorization": f"Bearer {token}"})
    assert answer2.status_code == 422
    assert len(answer2.content) < 5 * MAX_QUOTE_CHARS, answer2.text[:300]


def test_a_connection_that_never_finishes_its_headers_is_closed(
    served: tuple[SqliteStore, AgentHub, str],
) -> None:
    _, _, url = served
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    idle, slow = rawhttp.idle_connections(port, 2)
    slow.sendall(b"POST " + CALLBACK_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    for sock in (idle, slow):
        sock.settimeout(HEADER_TIMEOUT_S + 20)
        assert rawhttp.receive_all(sock) == b""  # closed by the server, not timed out
        sock.close()
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 20
