"""Telling the agent about saves and restores (reference §b.5, `trainguard.ipc`).

The agent turns ``ckpt_info_update`` into ``/status.progress`` (which steps this pod holds), so
the controller can pick the newest step every pod holds and pass it back in ``/start``; it
pauses log-rule hang timers between ``ckpt_save_begin`` and ``ckpt_save_end``; it records
``resume_report`` (step, tier, world sizes, why a tier was passed over) into the job status;
``train_step`` (at most every `STEP_REPORT_INTERVAL`, and always for the first step) is what
``trainguard run`` shows as step/total and loss and how the controller learns when training
resumed after a restart. Without the socket environment variable (a script run by hand) every
call is a no-op. A broken socket must never stop training, so failures are logged once and the
reporter goes quiet.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

from trainguard import constants as c
from trainguard import ipc
from trainguard.checkpoint.base import Restored
from trainguard.errors import AgentError, AgentRefused, UsageError

log = logging.getLogger("trainguard.checkpoint")

STEP_REPORT_INTERVAL = 0.25
"""Seconds between two ``train_step`` reports of one worker: one socket round trip per step
would cost fast loops more than the live view gains; the first and the last step always go."""


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
        self._last_step_report: float | None = None

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

    def save_failed(self, *, step: int, rank: int, tier: str, error: str) -> None:
        """Saving ``step`` to ``tier`` failed (the controller raises ``CheckpointFailed``)."""
        self._send(ipc.CKPT_SAVE_FAILED, step=step, rank=rank, tier=tier, error=error)

    def train_step(self, step: int, *, total: int | None = None, loss: float | None = None) -> None:
        """Training step ``step`` (of ``total``) finished with ``loss``; throttled."""
        now = time.monotonic()
        last = self._last_step_report
        due = last is None or now - last >= STEP_REPORT_INTERVAL or step == total
        if not due or not self.enabled:
            return
        self._last_step_report = now
        fields: dict[str, Any] = {"step": int(step), "rank": int(os.environ.get("RANK", "0"))}
        if total is not None:
            fields["total"] = int(total)
        if loss is not None and math.isfinite(loss):
            fields["loss"] = float(loss)
        self._send(ipc.TRAIN_STEP, **fields)

    def resumed(self, restored: Restored, *, seconds: float) -> None:
        """Training resumed as ``restored`` says (step, tier, world sizes, reason) after a
        restore of ``seconds``."""
        fields: dict[str, Any] = {
            "step": restored.step,
            "tier": str(restored.tier),
            "seconds": round(seconds, 4),
        }
        optional = {
            "world_size": restored.world_size,
            "saved_world_size": restored.saved_world_size,
            "reason": restored.reason,
        }
        fields.update({k: v for k, v in optional.items() if v is not None})
        self._send(ipc.RESUME_REPORT, **fields)

    def resume_limit(self) -> int | None:
        """The newest step a resume may load: ``TRAINGUARD_RESUME_STEP``, else the agent's
        agreed step, else no limit.

        Raises:
            UsageError: the environment variable is not an integer.
        """
        raw = os.environ.get(c.ENV_RESUME_STEP, "").strip()
        if not raw:
            return self.agreed_step()
        try:
            return int(raw)
        except ValueError as exc:
            raise UsageError(f"{c.ENV_RESUME_STEP}={raw!r} is not an integer step") from exc

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
