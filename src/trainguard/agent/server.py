"""The agent's HTTP control API (DESIGN §3), served by uvicorn in a thread of the agent.

Routes and bodies are HyperPod's (`trainguard.agent.protocol`). Every request, documentation
pages included, must carry ``Authorization: Bearer <token>``; the check runs in
`trainguard.httpguard`'s middleware, before any body is read or any handler runs, so a request
without the token can never change anything (401). The token is compared in constant time. The
same middleware caps bodies (413) and the server's connections (`MAX_CONNECTIONS`), so no
client can exhaust the memory or the descriptors the worker monitor and checkpoint socket need.
Refusals keep HyperPod's codes where it has them (422 for a bad body, quoting little of it) and
add ours: 409 when the state table forbids the request (but ``/start`` while running, ``/stop``
while ready or stopping and a repeated ``/shutdown`` answer 200, as HyperPod does), 404 for
``/logs`` of a rank this agent does not run. Bodies without a ``Content-Type`` are JSON.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from trainguard.agent.protocol import (
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
from trainguard.httpguard import (
    MAX_ERRORS_QUOTED,
    Authorize,
    QuietServer,
    guard,
    quote,
    server_config,
)

log = logging.getLogger(__name__)
MAX_CONNECTIONS = 64
"""Connections the agent's API holds at most (the controller needs one or two per pod)."""


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
    # HyperPod's clients may send JSON without a Content-Type (its own tests do); we read it as
    # JSON. The CSRF this guards against elsewhere cannot happen here: every route needs the
    # bearer token, which a browser never adds to a cross-site request.
    app = FastAPI(title="trainguard agent", strict_content_type=False)
    guard(app, authorize=_token_check(token))
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
    async def status() -> Response:
        # Serialized by pydantic, on the event loop: no worker-thread hop and no dict walk for
        # a route every controller asks every second (issue 18: the agent's CPU share).
        return Response(core.snapshot().wire_json(), media_type="application/json")

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


def _token_check(token: str | None) -> Authorize | None:
    if token is None:
        return None
    expected = token.encode()

    async def check(given: str) -> object | None:
        return True if hmac.compare_digest(given.encode(), expected) else None

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
            detail: Any = quote(str(exc))
            if isinstance(exc, SpecError):
                issues = exc.issues[:MAX_ERRORS_QUOTED]
                detail = [{"loc": quote(i.path), "msg": quote(i.message)} for i in issues]
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
        config = server_config(
            app,
            host=host,
            port=port,
            max_connections=MAX_CONNECTIONS,
            log_level=log_level,
            access_log=log_level == "debug",
            timeout_graceful_shutdown=int(shutdown_timeout),
        )
        self._server = QuietServer(config)
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
        self._server.request_exit()
        self._thread.join(timeout)
