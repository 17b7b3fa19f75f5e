"""Limits every HTTP server of ours applies before a request reaches a route.

The agent's control API and the controller's callback endpoint are reachable by anyone who can
open a TCP connection to them, token or not. Without limits one client could take the process
down: a 100 MB ``/update`` was read whole and parsed (1.76 GB RSS) and its 422 quoted the input
back; 20k idle connections used up the agent's file descriptors and its worker monitor and
checkpoint socket died with EMFILE. So, in this order, before any route or body parser runs:

1. the bearer token is checked from the headers alone (401, body never read);
2. a declared ``Content-Length`` over the cap is refused (413, body never read); a chunked body
   is read only up to the cap, and only within a deadline (413 / 408);
3. every refusal closes the connection, so an unread body is never drained.

Connections are bounded below uvicorn: each server holds at most `connection_cap` of them (a
share of the process's descriptor limit, so the rest of the process always has descriptors);
one more is answered 503 and closed at once. The listen backlog equals the cap, because asyncio
accepts up to a backlog's worth of connections before any of them can be refused: with
uvicorn's default of 2048 one burst took every descriptor of an agent limited to 256. A
connection that has not sent complete request headers within `HEADER_TIMEOUT_S` (slowloris,
idle sockets) is closed, as is an idle keep-alive connection after `KEEP_ALIVE_TIMEOUT_S`.
Error bodies quote at most `MAX_QUOTE_CHARS` of any input and list at most `MAX_ERRORS_QUOTED`
errors.

Servers that run beside training (the agent's API, a node's MTC server) use `QuietServer`:
uvicorn's own wakes ten times a second when idle, which costs a node CPU for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections.abc import Awaitable, Callable, Sequence
from types import FrameType
from typing import Any, ClassVar

import h11
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_BODY_BYTES = 1 << 20
"""Largest request body a server reads (1 MiB; a /start with many log rules is a few KiB)."""
MAX_HEADER_BYTES = 16 << 10
"""Largest request line plus headers (h11's incomplete-event cap); larger gets 400."""
HEADER_TIMEOUT_S = 10.0
"""Seconds a connection may take to send complete request headers, then it is closed."""
BODY_TIMEOUT_S = 30.0
"""Seconds a request may take to send its (capped) body, then it gets 408."""
KEEP_ALIVE_TIMEOUT_S = 5
"""Seconds an idle keep-alive connection stays open between requests."""
FD_SHARE = 4
"""A server holds at most 1/FD_SHARE of the process's file descriptor limit in connections."""
MIN_CONNECTIONS = 8
"""Connection cap floor, whatever the descriptor limit."""
MAX_QUOTE_CHARS = 200
"""Characters of a request value or error message an error response quotes at most."""
MAX_ERRORS_QUOTED = 20
"""Validation errors a 422 lists at most."""

PRINCIPAL = "trainguard.principal"
"""Key in ``request.state`` of what `Authorize` returned for the request's token."""

Authorize = Callable[[str], Awaitable[object | None]]
"""Given the bearer token (empty when none), who it is, or None to refuse with 401."""

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
    b"content-length: 21\r\nconnection: close\r\n\r\ntoo many connections\n"
)


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered to a share of this process's open-file limit (`FD_SHARE`)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(MIN_CONNECTIONS, min(wanted, soft // FD_SHARE))


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and a header-read deadline."""

    max_connections: ClassVar[int] = 64
    header_timeout: ClassVar[float] = HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Refuse (503, close) past the cap; otherwise start the header deadline."""
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_BUSY)
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Feed h11; the deadline ends once a request's headers are complete."""
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def on_response_complete(self) -> None:
        """A new deadline for the next request's headers on a kept-alive connection."""
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


TICK_S = 1.0
"""Seconds between two ticks of `QuietServer` (uvicorn's own: 0.1 s)."""
_UVICORN_TICKS_PER_S = 10


class QuietServer(uvicorn.Server):
    """uvicorn's server, ticking once a second instead of ten times.

    uvicorn's main loop wakes every 100 ms only to refresh its ``Date`` header (once a second)
    and to see whether it must exit: a third of an idle agent's HTTP thread CPU (issue 18). This
    one ticks every `TICK_S`; `request_exit` and the signals uvicorn handles end the wait at
    once, so it stops as quickly as before.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        """uvicorn's loop of ticks, one a second (a tick counts as uvicorn's ten)."""
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + _UVICORN_TICKS_PER_S) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_S)

    def request_exit(self) -> None:
        """Stop serving; safe from any thread."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already
                loop.call_soon_threadsafe(wake.set)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """uvicorn's signal handler (SIGINT, SIGTERM), which then wakes the loop."""
        super().handle_exit(sig, frame)
        self.request_exit()


def server_config(
    app: ASGIApp, *, host: str, port: int, max_connections: int, **options: Any
) -> uvicorn.Config:
    """A uvicorn config with this module's limits (``options`` go to `uvicorn.Config`)."""
    cap = connection_cap(max_connections)
    protocol = type("GuardedH11Protocol", (GuardedH11Protocol,), {"max_connections": cap})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        backlog=cap,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT_S,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        **options,
    )


def guard(app: FastAPI, *, authorize: Authorize | None, max_body: int = MAX_BODY_BYTES) -> None:
    """Install `RequestGuard` and capped 422 bodies on ``app``."""
    app.add_middleware(RequestGuard, authorize=authorize, max_body=max_body)
    app.add_exception_handler(RequestValidationError, _validation_failed)  # type: ignore[arg-type]


class RequestGuard:
    """ASGI middleware: token, then body size and deadline, then the app (see module doc).

    Args:
        app: the app to guard.
        authorize: checks the bearer token; None lets every request through (no auth).
        max_body: body size cap in bytes.
        body_timeout: seconds to receive the body.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        authorize: Authorize | None,
        max_body: int = MAX_BODY_BYTES,
        body_timeout: float = BODY_TIMEOUT_S,
    ) -> None:
        self.app, self.authorize = app, authorize
        self.max_body, self.body_timeout = max_body, body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse or pass the request on with its body already read."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.authorize is not None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            principal = await self.authorize(token if scheme == "Bearer" else "")
            if principal is None:
                extra = {"WWW-Authenticate": "Bearer"}
                await _refuse(scope, send, 401, "missing or wrong bearer token", extra)
                return
            scope.setdefault("state", {})[PRINCIPAL] = principal
        length = headers.get("content-length")
        if length is not None and int(length) > self.max_body:
            await _refuse(scope, send, 413, f"request body over {self.max_body} bytes")
            return
        try:
            body = await asyncio.wait_for(_read_body(receive, self.max_body), self.body_timeout)
        except _TooLarge:
            await _refuse(scope, send, 413, f"request body over {self.max_body} bytes")
            return
        except TimeoutError:
            await _refuse(scope, send, 408, f"request body not received in {self.body_timeout} s")
            return
        if body is None:
            return  # the client went away
        await self.app(scope, _replay(body, receive), send)


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(
    scope: Scope, send: Send, status: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    """Answer ``status`` and close the connection, so an unread body is never drained."""

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
    response.headers["connection"] = "close"
    await response(scope, nothing, send)


def quote(value: object) -> str:
    """``value`` as text, cut to `MAX_QUOTE_CHARS` (error bodies never echo big input)."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= MAX_QUOTE_CHARS:
        return text
    return f"{text[:MAX_QUOTE_CHARS]}... ({len(text)} characters)"


def capped_errors(errors: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors with locations, messages and inputs cut to size, at most 20 of them."""
    capped: list[dict[str, Any]] = []
    for error in errors[:MAX_ERRORS_QUOTED]:
        item: dict[str, Any] = {
            "loc": [p if isinstance(p, int) else quote(p) for p in error.get("loc", ())],
            "msg": quote(error.get("msg", "")),
            "type": error.get("type", ""),
        }
        if "input" in error:
            item["input"] = quote(_small(error["input"]))
        capped.append(item)
    if len(errors) > MAX_ERRORS_QUOTED:
        capped.append({"msg": f"... and {len(errors) - MAX_ERRORS_QUOTED} more errors"})
    return capped


def _small(value: object) -> object:
    """A container's shape instead of its (possibly huge) contents."""
    if isinstance(value, dict):
        return f"<object with {len(value)} keys>"
    if isinstance(value, list | tuple):
        return f"<array of {len(value)} items>"
    return value


async def _validation_failed(request: Request, exc: RequestValidationError) -> JSONResponse:
    del request
    return JSONResponse({"detail": capped_errors(list(exc.errors()))}, status_code=422)
