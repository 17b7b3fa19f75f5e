"""Small agent parts: progress tracker, log reading, worker socket, status push, rendezvous env."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from trainguard.agent.callback import CallbackPusher
from trainguard.agent.checkpoint_progress import ProgressTracker
from trainguard.agent.logs import LogFollower, tail_lines
from trainguard.agent.protocol import AgentState, AgentStatus, StartRequest
from trainguard.agent.rendezvous import assignment_from, worker_envs
from trainguard.agent.sockets import SocketServer
from trainguard.errors import AgentError
from trainguard.ipc import AgentSocketClient


def test_progress_counts_steps_every_local_rank_holds() -> None:
    tracker = ProgressTracker(2)
    tracker.update(0, step=10, tier="memory", path="/shm/10")
    assert tracker.payload() is None  # rank 1 has nothing yet
    tracker.update(1, step=10, tier="durable", path="s3://b/10")
    tracker.update(0, step=20, tier="memory", held=[10, 20])
    assert tracker.payload() == {
        "trainguard": {"progressCount": 10, "progressData": "/shm/10", "steps": [10]}
    }
    tracker.update(1, step=20, tier="memory")
    assert tracker.steps() == [10, 20]
    tracker.update(0, step=30, tier="memory", held=[30])  # memory tier evicted 10 and 20 on rank 0
    assert tracker.steps() == []
    with pytest.raises(ValueError, match="local_rank 2"):
        tracker.update(2, step=1, tier="memory")


def test_log_follower_hands_out_complete_lines_once(tmp_path: Path) -> None:
    path = tmp_path / "stdout.log"
    follower = LogFollower(path)
    assert follower.read() == []
    path.write_bytes(b"one\ntw")
    assert follower.read() == ["one"]
    with path.open("ab") as handle:
        handle.write(b"o\r\nthree\n")
    assert follower.read() == ["two", "three"]
    assert follower.read() == []
    path.write_bytes(b"new\n")  # truncated and rewritten
    assert follower.read() == ["new"]


def test_tail_lines_reads_only_the_end(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_text("".join(f"line {i}\n" for i in range(50_000)))
    assert tail_lines(path, 3) == ["line 49997", "line 49998", "line 49999"]
    assert tail_lines(path, 0) == []
    assert tail_lines(tmp_path / "missing", 5) == []


@pytest.fixture
def sockets() -> SocketServer:
    server = SocketServer(Path("/tmp") / f"tg-test-{uuid.uuid4().hex[:8]}.sock")
    server.register("echo", lambda message: {"got": message["value"]})
    server.start()
    yield server
    server.close()
    assert not server.path.exists()


def test_socket_dispatch_unknown_types_and_bad_messages(sockets: SocketServer) -> None:
    with AgentSocketClient(str(sockets.path), timeout=5) as client:
        assert client.request("echo", value=3) == {"type": "echo", "got": 3}
        with pytest.raises(AgentError, match="unknown message type 'nope'"):
            client.request("nope")
        with pytest.raises(AgentError, match="KeyError"):
            client.request("echo")
        assert client.request("echo", value="still connected")["got"] == "still connected"
    with pytest.raises(ValueError, match="already has a handler"):
        sockets.register("echo", lambda message: {})


def test_pusher_sends_the_newest_status_with_the_token() -> None:
    received: list[tuple[str, dict[str, object]]] = []
    arrived = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        received.append((request.headers["Authorization"], json.loads(request.content)))
        arrived.set()
        return httpx.Response(200)

    url: list[str | None] = [None]
    pusher = CallbackPusher(
        pod="p", token="tok", url=lambda: url[0], transport=httpx.MockTransport(handler)
    )
    pusher(AgentStatus(status=AgentState.RUNNING))  # no URL yet: nothing to send
    url[0] = "http://controller/v1/agent-status"
    pusher(AgentStatus(status=AgentState.FAULTED, reason="WorkerCrash"))
    assert arrived.wait(5)
    pusher.close()
    assert received[-1][0] == "Bearer tok"
    assert received[-1][1]["pod"] == "p"
    assert received[-1][1]["status"] == {
        "status": "faulted",
        "transitions": {},
        "reason": "WorkerCrash",
    }


def test_pusher_survives_an_unreachable_controller() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    pusher = CallbackPusher(
        pod="p", token=None, url=lambda: "http://x/", transport=httpx.MockTransport(handler)
    )
    pusher(AgentStatus(status=AgentState.FAULTED))
    time.sleep(0.05)
    pusher.close()
    assert pusher.sent == 0


def test_worker_env_from_start() -> None:
    start = StartRequest.model_validate(
        {
            "rank": 2,
            "nnodes": 3,
            "faultCount": 4,
            "master_addr": "10.1.1.1",
            "master_port": 555,
            "progress": {"trainguard": {"progressCount": 40, "progressData": "step_40"}},
        }
    )
    envs = worker_envs(
        assignment_from(start, nproc=2),
        role="default",
        run_id="job",
        max_restarts=0,
        extra={"X": "1"},
        inherited={},
    )
    assert envs[1]["RANK"] == "5" and envs[1]["LOCAL_RANK"] == "1"
    assert envs[0]["WORLD_SIZE"] == "6" and envs[0]["GROUP_RANK"] == "2"
    assert envs[0]["TORCHELASTIC_RESTART_COUNT"] == envs[0]["JOB_RESTART_COUNT"] == "4"
    assert envs[0]["MASTER_ADDR"] == "10.1.1.1" and envs[0]["MASTER_PORT"] == "555"
    assert envs[0]["TRAINGUARD_RESUME_STEP"] == "40" and envs[0]["X"] == "1"
    assert envs[0]["OMP_NUM_THREADS"] == "1"


def test_socket_file_admits_only_its_owner_whatever_the_umask() -> None:
    old = os.umask(0)
    try:
        server = SocketServer(Path("/tmp") / f"tg-test-{uuid.uuid4().hex[:8]}.sock")
        server.start()
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
    finally:
        server.close()
