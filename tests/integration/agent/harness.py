"""Real agent processes on 127.0.0.1 for integration tests, cleaned up even when a test fails."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psutil

from tests.ports import free_port
from trainguard import constants as c
from trainguard.agent.client import AgentClient
from trainguard.agent.protocol import AgentState, AgentStatus, StartRequest
from trainguard.errors import TrainguardError

HOST = "127.0.0.1"
TOKEN = "integration-token"
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(TrainguardError):
            value = probe()
            if value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class AgentProcess:
    """One ``python -m trainguard.agent`` in its own session, with its own port and dirs."""

    def __init__(
        self,
        tmp: Path,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        token: str | None = TOKEN,
        nofile: int | None = None,
    ) -> None:
        self.name, self.port = name, free_port()
        self.dir = tmp / name
        self.dir.mkdir(parents=True)
        self.log_dir = self.dir / "logs"
        environ = dict(os.environ) | {
            c.ENV_AGENT_PORT: str(self.port),
            c.ENV_AGENT_HOST: HOST,
            c.ENV_LOG_DIR: str(self.log_dir),
            c.ENV_SHM_DIR: str(self.dir / "shm"),
            c.ENV_POD_NAME: name,
            "PYTHONUNBUFFERED": "1",
        }
        environ.pop(c.ENV_AGENT_TOKEN, None)
        if token:
            environ[c.ENV_AGENT_TOKEN] = token
        environ.update(env or {})
        self.output = (self.dir / "agent.out").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trainguard.agent", *argv],
            env=environ,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if nofile is not None:  # before the agent's imports are done, so before it serves
            psutil.Process(self.proc.pid).rlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.url = f"http://{HOST}:{self.port}"
        self.client = AgentClient(self.url, token=token, timeout=10.0)
        wait_for(f"agent {name} to serve", self._serving, timeout=90)

    def _serving(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"agent {self.name} exited: {self.text()}")
        with contextlib.suppress(TrainguardError):
            self.client.status()
            return True
        return False

    def status(self) -> AgentStatus:
        return self.client.status()

    def wait_state(self, state: AgentState, timeout: float = 60.0) -> AgentStatus:
        def probe() -> AgentStatus | None:
            status = self.status()
            return status if status.status is state else None

        return wait_for(f"{self.name} to be {state.value}", probe, timeout)

    def start(self, rank: int, nnodes: int, master_port: int, **fields: Any) -> None:
        fields.setdefault("faultCount", 0)
        self.client.start(
            StartRequest.model_validate(
                {"rank": rank, "nnodes": nnodes, "master_addr": HOST, "master_port": master_port}
                | fields
            )
        )

    def text(self) -> str:
        self.output.flush()
        return (self.dir / "agent.out").read_text(errors="replace")

    def close(self) -> None:
        """Shut the agent down (SIGTERM, then SIGKILL of its whole session); check no leftovers."""
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.output.close()


@contextlib.contextmanager
def agents(
    tmp: Path, count: int, argv: Sequence[str], **options: Any
) -> Iterator[list[AgentProcess]]:
    """``count`` agents running ``argv``; all shut down at the end."""
    started: list[AgentProcess] = []
    try:
        for index in range(count):
            started.append(AgentProcess(tmp, f"pod-{index}", argv, **options))
        yield started
    finally:
        for agent in started:
            agent.close()


def processes_mentioning(marker: str, *, but: int = -1) -> list[psutil.Process]:
    """Living (non-zombie) processes but ``but`` whose command line contains ``marker``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == but:
                continue
            if any(marker in part for part in proc.info["cmdline"] or []):
                found.append(proc)
    return found
