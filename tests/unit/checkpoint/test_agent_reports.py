"""What the manager tells its agent over the local socket (a real unix socket, one thread)."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from trainguard import constants as c
from trainguard import ipc
from trainguard.checkpoint import CheckpointManager
from trainguard.checkpoint.report import AgentReporter, step_from_progress


class FakeAgentSocket:
    """Accepts clients, records every message, answers acks (and progress for info_get)."""

    def __init__(self, path: Path, progress: dict[str, Any]) -> None:
        self.path, self.progress = path, progress
        self.messages: list[dict[str, Any]] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(4)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while (message := ipc.read_message(conn)) is not None:
                with self._lock:
                    self.messages.append(message)
                reply: dict[str, Any] = {"type": "ack"}
                if message["type"] == ipc.CKPT_INFO_GET:
                    reply["progress"] = self.progress
                conn.sendall(ipc.encode(reply))

    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._server.close()
        self._thread.join(timeout=10)


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAgentSocket]:
    directory = Path(tempfile.mkdtemp(prefix="tg-sock-"))
    fake = FakeAgentSocket(directory / "agent.sock", {"trainguard": {"progressCount": 2}})
    monkeypatch.setenv(c.ENV_AGENT_SOCKET, str(fake.path))
    try:
        yield fake
    finally:
        fake.close()
        (directory / "agent.sock").unlink(missing_ok=True)
        directory.rmdir()


def test_save_and_restore_are_reported(agent: FakeAgentSocket, shm_root: Path) -> None:
    manager = CheckpointManager(shm_dir=shm_root, memory_every=1, job="j")
    try:
        for step in (1, 2, 3):
            manager.save(step, {"w": torch.full((4,), float(step))})
            # Let each step's checksum run before the next save: a step evicted first (keep=2)
            # is, by design, never replicated, and a loaded machine could otherwise get there.
            manager.wait()
        target: dict[str, Any] = {}
        assert manager.load_latest(target) == 2  # the agreed step from ckpt_info_get
    finally:
        manager.close()
    replicated = [m["step"] for m in agent.messages if m["type"] == ipc.CKPT_REPLICATE]
    assert replicated == [1, 2, 3]
    replication = {ipc.CKPT_REPLICATE, ipc.CKPT_PEER_STEPS, ipc.CKPT_FETCH}
    types = [t for t in agent.types() if t not in replication]  # a second connection
    assert types[:2] == [ipc.CKPT_SAVE_BEGIN, ipc.CKPT_SAVE_END]
    updates = [m for m in agent.messages if m["type"] == ipc.CKPT_INFO_UPDATE]
    assert [u["step"] for u in updates] == [1, 2, 3]
    assert updates[-1]["tier"] == "memory" and updates[-1]["held"] == [2, 3]
    assert Path(updates[-1]["path"]).name == "step_3.json"
    assert ipc.CKPT_INFO_GET in types
    (report,) = [m for m in agent.messages if m["type"] == ipc.RESUME_REPORT]
    assert (report["step"], report["tier"]) == (2, "memory")


def test_fresh_start_reports_tier_none(agent: FakeAgentSocket, shm_root: Path) -> None:
    agent.progress = {}
    with CheckpointManager(shm_dir=shm_root) as manager:
        assert manager.load_latest({}) is None
    (report,) = [m for m in agent.messages if m["type"] == ipc.RESUME_REPORT]
    assert (report["step"], report["tier"]) == (None, "none")


def test_without_socket_env_reporting_is_off() -> None:
    assert not AgentReporter().enabled


def test_dead_socket_disables_reports_without_failing(tmp_path: Path) -> None:
    reporter = AgentReporter(str(tmp_path / "missing.sock"))
    reporter.save_begin(1)
    assert not reporter.enabled


@pytest.mark.parametrize(
    ("progress", "step"),
    [({"trainguard": {"progressCount": 7}}, 7), ({"step": 3}, 3), ({}, None), (None, None)],
)
def test_progress_parsing(progress: Any, step: int | None) -> None:
    assert step_from_progress(progress) == step
