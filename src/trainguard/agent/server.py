"""The agent's HTTP control API (DESIGN §3), served by uvicorn in a thread of the agent.

Routes and bodies are HyperPod's (`trainguard.agent.protocol`). Every request, documentation
pages included, must carry ``Authorization: Bearer <token>``; the check runs in a middleware,
before any body is parsed or any handler runs, so a request without the token can never change
anything (401). The token is compared in constant time. Refusals keep HyperPod's codes where it
has them (422 for a bad body) and add ours: 409 when the state table forbids the request, 404
for ``/logs`` of a rank this agent does not run.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from trainguard.agent.protocol import (
    AUTH_HEADER,
    AUTH_SCHEME,
    StartRequest,
    StopRequest,
    UpdateRequest,
)
from trainguard.agent.state import AgentCore
from trainguard.errors import (
    ConflictError,
    InfrastructureError,
    NotFoundError,
    SpecError,
    UsageError,
)

log = logging.getLogger(__name__)


class Controls(Protocol):
    """What the routes need from the agent runtime."""

    core: AgentCore

    def check_rules(self, request: UpdateRequest) -> None:
        """Raise `SpecError` when the request's log rules are invalid."""

    def logs(self, *, rank: int, tail: int, stream: str) -> list[str]:
        """Last ``tail`` lines of global rank ``rank``; `NotFoundError` if not ours."""


def build_app(
    controls: Controls, *, token: str | None, routers: Sequence[APIRouter] = ()
) -> FastAPI:
    """The FastAPI app of one agent.

    Args:
        controls: the agent runtime.
        token: the bearer token every request must carry; None disables auth
            (``--insecure-no-auth`` only).
        routers: extra routes from extensions (guarded by the same token).
    """
    app = FastAPI(title="trainguard agent")
    app.middleware("http")(_auth_middleware(token))
    _add_errors(app)
    core = controls.core

    @app.post("/start")
    def start(body: StartRequest) -> Response:
        controls.check_rules(body)
        core.request_start(body)
        return Response(status_code=200)

    @app.post("/stop")
    def stop(body: StopRequest | None = None) -> Response:
        core.request_stop(body or StopRequest())
        return Response(status_code=200)

    @app.post("/update")
    def update(body: UpdateRequest) -> dict[str, Any]:
        controls.check_rules(body)
        core.update(body)
        return core.snapshot().to_wire()

    @app.post("/shutdown")
    def shutdown(body: StopRequest | None = None) -> Response:
        core.request_shutdown(body or StopRequest())
        return Response(status_code=200)

    @app.get("/status")
    def status() -> dict[str, Any]:
        return core.snapshot().to_wire()

    @app.get("/logs")
    def logs(rank: int, tail: int = 100, stream: str = "stdout") -> dict[str, Any]:
        if stream not in ("stdout", "stderr"):
            raise UsageError(f"stream must be stdout or stderr, got {stream!r}")
        if tail < 0:
            raise UsageError(f"tail must not be negative, got {tail}")
        return {"rank": rank, "lines": controls.logs(rank=rank, tail=tail, stream=stream)}

    for router in routers:
        app.include_router(router)
    return app


Next = Callable[[Request], Awaitable[Response]]


def _auth_middleware(token: str | None) -> Callable[[Request, Next], Awaitable[Response]]:
    expected = f"{AUTH_SCHEME} {token}".encode() if token else None

    async def check(request: Request, call_next: Next) -> Response:
        if expected is not None:
            given = request.headers.get(AUTH_HEADER, "").encode()
            if not hmac.compare_digest(given, expected):
                return JSONResponse(
                    {"detail": "missing or wrong bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": AUTH_SCHEME},
                )
        return await call_next(request)

    return check


def _add_errors(app: FastAPI) -> None:
    codes: dict[type[Exception], int] = {
        ConflictError: 409,
        NotFoundError: 404,
        SpecError: 422,
        UsageError: 422,
    }
    for kind, code in codes.items():

        async def handler(request: Request, exc: Exception, code: int = code) -> JSONResponse:
            del request
            detail: Any = str(exc)
            if isinstance(exc, SpecError):
                detail = [{"loc": i.path, "msg": i.message} for i in exc.issues]
            return JSONResponse({"detail": detail}, status_code=code)

        app.add_exception_handler(kind, handler)


class ServerThread:
    """uvicorn serving ``app`` in a daemon thread (as HyperPod's agent runs its server).

    Args:
        app: the app.
        host: bind address.
        port: bind port (0 = any free port).
        log_level: uvicorn's log level.
        shutdown_timeout: seconds uvicorn waits for open requests when stopping.
    """

    def __init__(
        self,
        app: FastAPI,
        *,
        host: str,
        port: int,
        log_level: str = "info",
        shutdown_timeout: float = 300,
    ) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=log_level == "debug",
            timeout_keep_alive=5,
            timeout_graceful_shutdown=int(shutdown_timeout),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="agent-http", daemon=True)
        self.host = host

    def start(self, timeout: float = 15.0) -> int:
        """Serve; returns the bound port.

        Raises:
            InfrastructureError: the server did not come up (port taken, bad host).
        """
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise InfrastructureError(
                    f"agent HTTP server did not start on {self.host} (port in use?)"
                )
            time.sleep(0.01)
        port: int = self._server.servers[0].sockets[0].getsockname()[1]
        return port

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving."""
        self._server.should_exit = True
        self._thread.join(timeout)
