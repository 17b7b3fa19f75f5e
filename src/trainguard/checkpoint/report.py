"""Telling the agent about saves and restores (reference §b.5, `trainguard.agent.ipc`).

The agent turns ``ckpt_info_update`` into ``/status.progress`` (which steps this pod holds), so
the controller can pick the newest step every pod holds and pass it back in ``/start``; it
pauses log-rule hang timers between ``ckpt_save_begin`` and ``ckpt_save_end``; and it records
``resume_report`` into the job status. Without the socket environment variable (a script run
by hand) every call is a no-op. A broken socket must never stop training, so failures are
logged once and the reporter goes quiet.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from trainguard import constants as c
from trainguard.agent import ipc
from trainguard.errors import AgentError, AgentRefused

log = logging.getLogger("trainguard.checkpoint")


class AgentReporter:
    """Thread-safe, best-effort messages to the local agent.

    Args:
        path: socket path; defaults to ``HYPERPOD_ELASTICAGENT_SOCKET_SERVER_PATH``. With
            neither, the reporter is disabled.
        timeout: seconds to wait for each reply.
    """

    def __init__(self, path: str | None = None, *, timeout: float = 10.0) -> None:
        self.path = path or os.environ.get(c.ENV_AGENT_SOCKET) or None
        self._timeout = timeout
        self._client: ipc.AgentSocketClient | None = None
        self._lock = threading.Lock()
        self._broken = False

    @property
    def enabled(self) -> bool:
        """Whether messages are sent at all."""
        return self.path is not None and not self._broken

    def request(self, kind: str, **fields: Any) -> dict[str, Any] | None:
        """Send any message; the reply, or None when disabled or the socket broke."""
        return self._send(kind, **fields)

    def _send(self, kind: str, **fields: Any) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        with self._lock:
            try:
                if self._client is None:
                    self._client = ipc.AgentSocketClient(self.path, timeout=self._timeout)
                return self._client.request(kind, **fields)
            except AgentRefused as exc:
                log.warning("checkpoint: agent refused %s: %s", kind, exc)
                return None
            except AgentError as exc:
                log.warning("checkpoint: agent socket unusable, no more reports: %s", exc)
                self._broken = True
                return None

    def save_begin(self, step: int) -> None:
        """The blocking part of a save (or load) starts."""
        self._send(ipc.CKPT_SAVE_BEGIN, step=step)

    def save_end(self, step: int) -> None:
        """The blocking part is over."""
        self._send(ipc.CKPT_SAVE_END, step=step)

    def info_update(self, *, step: int, tier: str, path: str, held: Iterable[int]) -> None:
        """A step is committed on ``tier``; ``held`` lists every step this rank holds there."""
        self._send(ipc.CKPT_INFO_UPDATE, step=step, tier=tier, path=path, held=sorted(held))

    def resume(self, *, step: int | None, tier: str) -> None:
        """Training resumed from ``step`` on ``tier`` (``None``/``"none"``: from scratch)."""
        self._send(ipc.RESUME_REPORT, step=step, tier=tier)

    def agreed_step(self) -> int | None:
        """The step the controller agreed on (``ckpt_info_get``), or None."""
        reply = self._send(ipc.CKPT_INFO_GET)
        return step_from_progress(reply.get("progress") if reply else None)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def step_from_progress(progress: Any) -> int | None:
    """The step in a ``progress`` payload: ``{prefix: {"progressCount": N}}`` or ``{"step": N}``."""
    if not isinstance(progress, dict):
        return None
    if isinstance(progress.get("step"), int):
        return int(progress["step"])
    for entry in progress.values():
        if isinstance(entry, dict) and isinstance(entry.get("progressCount"), int):
            return int(entry["progressCount"])
    return None
