"""What ``trainguard run`` knows about its job while it runs: phase, step/total, loss, restarts,
why pods wait, and the job's events.

Where each figure comes from, best source first:

- step, total, loss: rank 0's agent ``/status`` (``trainguard.training``), fed by the training
  script's ``CheckpointManager.report_step(step, total=..., loss=...)``; for scripts that do
  not report (HyperPod's samples), the last ``Step: N[/T] ... Loss: X`` line of rank 0's log,
  read through the agent's ``/logs``;
- phase, restarts, the Unschedulable reason: the job's record in the store;
- events: the store (fault → detected → restarted → training resumed).

`ProgressView` only collects; `trainguard.cli.liveview` draws (a rich live view on a
terminal, plain lines elsewhere).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from trainguard import constants as c
from trainguard.agent.client import AgentClient
from trainguard.agent.protocol import AgentStatus
from trainguard.errors import TrainguardError
from trainguard.store.base import Store
from trainguard.store.records import EventRecord, JobRecord

STEP_LOSS = re.compile(
    r"step[:=\s]+(\d+)(?:\s*/\s*(\d+))?.*?loss[:=\s]+([-+0-9.eE]+|nan|inf)", re.IGNORECASE
)
AGENT_POLL_SECONDS = 1.0
"""How often rank 0's agent is asked for the step (the store is read on every update). Each ask
is one or two requests that rank 0's node pays for beside training (two a second were half of
its agent's CPU, issue 18); a person reads a step counter once a second well enough."""


@dataclass
class Snapshot:
    """What the view shows."""

    phase: str = "Pending"
    step: int | None = None
    total: int | None = None
    loss: float | None = None
    restarts: int = 0
    waiting: str | None = None
    """Why pods are not placed (the Unschedulable condition's message), while they are not."""
    events: list[EventRecord] = field(default_factory=list)
    new_events: list[EventRecord] = field(default_factory=list)
    rate: float | None = None
    """Steps per second since the last (re)start of training."""

    @property
    def eta(self) -> float | None:
        """Seconds to the last step at the current rate, when both are known."""
        if self.rate is None or self.rate <= 0 or self.step is None or self.total is None:
            return None
        return max(0.0, (self.total - self.step) / self.rate)


def parse_step_loss(lines: list[str]) -> tuple[int | None, int | None, float | None]:
    """The last ``Step: N[/T]`` … ``Loss: X`` in ``lines``: step, total (or None), loss."""
    for line in reversed(lines):
        match = STEP_LOSS.search(line)
        if match:
            total = int(match.group(2)) if match.group(2) else None
            return int(match.group(1)), total, float(match.group(3))
    return None, None, None


class ProgressView:
    """Polls the store and rank 0's agent; `update` returns a fresh `Snapshot`."""

    def __init__(self, store: Store, namespace: str, name: str) -> None:
        self.store, self.namespace, self.name = store, namespace, name
        self.snapshot = Snapshot()
        self._seen_events = 0
        self._next_agent_poll = 0.0
        self._rate_origin: tuple[float, int] | None = None
        self._client: AgentClient | None = None  # kept: a new httpx client loads the CA bundle
        self._client_key: tuple[str, str | None] = ("", None)

    def close(self) -> None:
        """Close the agent client."""
        if self._client is not None:
            self._client.close()

    def update(self) -> Snapshot:
        """Refresh from the store (and, at most every `AGENT_POLL_SECONDS`, from the agent)."""
        snap = self.snapshot
        record = self.store.find_job(self.namespace, self.name)
        if record is None:
            return snap
        status = record.status
        snap.phase = record.state.phase.value
        snap.restarts = status.restart_count
        snap.waiting = next(
            (
                x.message
                for x in status.conditions
                if x.type == c.COND_PODS_RUNNING and x.status == "False"
            ),
            None,
        )
        events = self.store.list_events(kind="Job", namespace=self.namespace, name=self.name)
        snap.new_events = events[self._seen_events :]
        snap.events = events
        self._seen_events = len(events)
        if time.monotonic() >= self._next_agent_poll:
            self._next_agent_poll = time.monotonic() + AGENT_POLL_SECONDS
            self._poll_agent(record)
        return snap

    def _poll_agent(self, record: JobRecord) -> None:
        pods = [
            p
            for p in self.store.list_pods(self.namespace, self.name)
            if p.node_rank == 0 and not p.spare
        ]
        if not pods or pods[0].url is None:
            return
        client = self._agent(pods[0].url, record.state.token)
        try:
            step, total, loss = _from_status(client.status())
            if step is None:
                step, total, loss = parse_step_loss(client.logs(rank=0, tail=50))
        except TrainguardError:
            return
        if step is not None:
            self._set_step(step, total, loss)

    def _set_step(self, step: int, total: int | None, loss: float | None) -> None:
        snap, now = self.snapshot, time.monotonic()
        origin = self._rate_origin
        if origin is None or snap.step is None or step < snap.step:
            self._rate_origin, snap.rate = (now, step), None  # (re)started: measure anew
        elif now > origin[0] and step > origin[1]:
            snap.rate = (step - origin[1]) / (now - origin[0])
        snap.step, snap.loss = step, loss
        snap.total = total if total is not None else snap.total

    def _agent(self, url: str, token: str | None) -> AgentClient:
        """The client of rank 0's agent, rebuilt only when the pod (or the token) changed."""
        if self._client is None or self._client_key != (url, token):
            if self._client is not None:
                self._client.close()
            self._client = AgentClient(url, token=token, timeout=1.0)
            self._client_key = (url, token)
        return self._client


def _from_status(status: AgentStatus) -> tuple[int | None, int | None, float | None]:
    training = status.trainguard.training if status.trainguard else None
    if training is None:
        return None, None, None
    return training.step, training.total, training.loss
