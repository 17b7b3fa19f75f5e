"""``POST /trainguard/signal``: send a signal to a process of this agent's pod (fault injection).

On Kubernetes the operator cannot reach a pod's processes: it has no ``pods/exec`` and must not
(exec rights are root on every node the job runs on). Fault injection (``kill-worker``,
``hang-worker``, ``kill-agent``) therefore asks the agent, which already holds the workers'
pids. The route is behind the agent's bearer token like every other one, and it signals only
the agent itself or a descendant of it (workers, their children, spares; the agent is a child
subreaper, so orphans of a worker stay its descendants): any other pid is refused with 403, so
the token cannot be used to signal processes of other pods on the same machine. A signal to the
agent itself is sent after the response, so the caller learns that it was accepted.
"""

from __future__ import annotations

import os
import signal
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from trainguard import constants as c
from trainguard.proctree import descendants

SIGNAL_PATH = c.AGENT_SIGNAL_PATH


class SignalRequest(BaseModel):
    """Body of `SIGNAL_PATH`: which process, which signal (name like ``SIGKILL`` or number)."""

    model_config = ConfigDict(extra="forbid")

    pid: Annotated[int, Field(gt=0)]
    signal: str | int

    @field_validator("signal")
    @classmethod
    def _known_signal(cls, value: str | int) -> str | int:
        to_signal(value)
        return value


def to_signal(value: str | int) -> signal.Signals:
    """``SIGKILL``, ``KILL`` or ``9`` as a `signal.Signals`; ValueError names the value."""
    try:
        if isinstance(value, int) or value.isdigit():
            return signal.Signals(int(value))
        name = value.upper()
        return signal.Signals[name if name.startswith("SIG") else f"SIG{name}"]
    except (KeyError, ValueError):
        raise ValueError(f"unknown signal {value!r}") from None


def signal_router() -> APIRouter:
    """The router to mount on the agent's app (behind its token guard)."""
    router = APIRouter()

    @router.post(SIGNAL_PATH)
    def send(body: SignalRequest, tasks: BackgroundTasks) -> Any:
        sig = to_signal(body.signal)
        if body.pid == os.getpid():
            tasks.add_task(os.kill, body.pid, sig)
            return {"pid": body.pid, "signal": sig.name}
        if body.pid not in {proc.pid for proc in descendants()}:
            return JSONResponse(
                {"detail": f"pid {body.pid} is neither this agent nor one of its processes"},
                status_code=403,
            )
        try:
            os.kill(body.pid, sig)
        except ProcessLookupError:
            return JSONResponse({"detail": f"pid {body.pid} has exited"}, status_code=404)
        return {"pid": body.pid, "signal": sig.name}

    return router
