"""The live view of a running job: phase, training step, loss, restarts, latest event.

Step and loss come from rank 0's log (``Step: N Loss: X``, the HyperPod samples' format) read
through the agent's ``/logs``; on a terminal the view redraws in place (rich), elsewhere each
new event is printed as one line, so CI logs stay readable.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.text import Text

from trainguard.agent.client import AgentClient
from trainguard.clock import rfc3339
from trainguard.controller.state import JobState
from trainguard.errors import TrainguardError
from trainguard.spec.status import JobStatus
from trainguard.store.records import JobRecord
from trainguard.store.sqlite import SqliteStore

STEP_LOSS = re.compile(r"step[:=\s]+(\d+).*?loss[:=\s]+([-+0-9.eE]+|nan|inf)", re.IGNORECASE)


@dataclass
class Snapshot:
    """What the view shows."""

    phase: str = "Pending"
    step: int | None = None
    loss: str | None = None
    restarts: int = 0
    event: str = ""

    def render(self, name: str) -> Text:
        """One line."""
        parts = [f"job {name}", self.phase]
        if self.step is not None:
            parts.append(f"step {self.step}" + (f" loss {self.loss}" if self.loss else ""))
        parts.append(f"restarts {self.restarts}")
        if self.event:
            parts.append(self.event)
        return Text(" | ".join(parts))


def parse_step_loss(lines: list[str]) -> tuple[int | None, str | None]:
    """The last ``Step``/``Loss`` pair in ``lines``."""
    for line in reversed(lines):
        match = STEP_LOSS.search(line)
        if match:
            return int(match.group(1)), match.group(2)
    return None, None


class ProgressView:
    """Polls the store (and rank 0's log) and shows the job's progress on ``console``."""

    def __init__(self, store: SqliteStore, namespace: str, name: str, *, console: Console) -> None:
        self.store, self.namespace, self.name, self.console = store, namespace, name, console
        self.snapshot = Snapshot()
        self._seen_events = 0
        self._live: Live | None = None
        self._next_log_poll = 0.0
        self._client: AgentClient | None = None  # kept: a new httpx client loads the CA bundle
        self._client_key: tuple[str, str | None] = ("", None)

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:
            self._live = Live(self.snapshot.render(self.name), console=self.console, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
        if self._client is not None:
            self._client.close()

    def update(self) -> None:
        """Refresh from the store; print new events when not on a terminal."""
        record = self.store.find_job(self.namespace, self.name)
        if record is None:
            return
        status = JobStatus.model_validate(record.status)
        self.snapshot.phase = JobState.model_validate(record.state).phase.value
        self.snapshot.restarts = status.restart_count
        self._poll_log(record)
        events = self.store.list_events(kind="Job", namespace=self.namespace, name=self.name)
        for event in events[self._seen_events :]:
            self.snapshot.event = f"{event.reason}: {event.message}"
            if self._live is None:
                self.console.print(
                    f"{rfc3339(event.time)} {event.type} {event.reason}: {event.message}",
                    markup=False,
                    highlight=False,
                )
        self._seen_events = len(events)
        if self._live is not None:
            self._live.update(self.snapshot.render(self.name))

    def _poll_log(self, record: JobRecord) -> None:
        if time.monotonic() < self._next_log_poll:
            return
        self._next_log_poll = time.monotonic() + 1.0
        pods = [
            p
            for p in self.store.list_pods(self.namespace, self.name)
            if p.node_rank == 0 and not p.spare
        ]
        if not pods or pods[0].url is None:
            return
        client = self._agent(pods[0].url, JobState.model_validate(record.state).token)
        try:
            step, loss = parse_step_loss(client.logs(rank=0, tail=50))
        except TrainguardError:
            return
        if step is not None:
            self.snapshot.step, self.snapshot.loss = step, loss

    def _agent(self, url: str, token: str | None) -> AgentClient:
        """The client of rank 0's agent, rebuilt only when the pod (or the token) changed."""
        if self._client is None or self._client_key != (url, token):
            if self._client is not None:
                self._client.close()
            self._client = AgentClient(url, token=token, timeout=1.0)
            self._client_key = (url, token)
        return self._client
