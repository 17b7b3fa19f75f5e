"""HTTP routes of the MTC server: the library's API, byte for byte, plus health and metrics.

What the library (``InMemoryCheckpointClient``, 1.1.3) sends and expects:

==========================================  =======================================================
``GET /v1/cp/namespaces/{ns}``              200 ``{"num_ranks", "steps_to_retain_per_rank"}``; 404
``POST /v1/cp/namespaces/{ns}``             query ``num_ranks``, ``steps_retained``; 200
``DELETE /v1/cp/namespaces/{ns}``           200; 404
``POST /v1/cp/checkpoints/{ns}/{r}/{s}``    body = shard, header ``Shard-Meta``; 200
``GET /v1/cp/checkpoints/{ns}/{r}/{s}``     200 body + ``Shard-Meta`` + ``Content-Length``; 404
``DELETE /v1/cp/checkpoints/{ns}/{r}/{s}``  200; 404
``GET /v1/cp/checkpoints/{ns}/latest``      query ``limit``; 200 JSON list of complete steps
``POST /v1/cp/cluster/reset``               200
==========================================  =======================================================

The client treats 404 as "absent" (``get_checkpoint`` returns None), any other 4xx as its own
mistake (``InMemoryClientError`` quoting our message) and 5xx as the server's. Its session
retries 429/500/502/503/504 — and with the default ``request_retries=0`` urllib3 reports those
as exhausted retries, so the user sees ``InMemoryRequestError`` without our message. Hence: bad
input is a 400 naming the field, a namespace that exists with another shape (or a step older
than every step its rank keeps, which retention would evict at once) a 409, a damaged
shard with no good copy a 500, and a full node 507 Insufficient Storage — not 503, which a
retrying client would hammer although nothing frees memory until a save succeeds, and which
would hide the message saying how full the node is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trainguard.checkpoint.mtc import shardmeta
from trainguard.checkpoint.mtc.limits import MAX_STEP, FieldError, int_field, namespace_name
from trainguard.checkpoint.mtc.metrics import MtcMetrics
from trainguard.checkpoint.mtc.namespaces import NamespaceConfig
from trainguard.checkpoint.mtc.peers import INVENTORY_ROUTE, PEER_HEADER
from trainguard.checkpoint.mtc.proxyform import ProxyFormMiddleware
from trainguard.checkpoint.mtc.service import MtcService
from trainguard.errors import (
    CheckpointCorrupt,
    CheckpointError,
    CheckpointNotFound,
    ConflictError,
    NotFoundError,
    StorageFull,
)
from trainguard.httpguard import guard, quote

NS = "/v1/cp/namespaces/{namespace}"
SHARD = "/v1/cp/checkpoints/{namespace}/{rank}/{step}"
LATEST = "/v1/cp/checkpoints/{namespace}/latest"
RESET = "/v1/cp/cluster/reset"

STATUS_OF: dict[type[Exception], int] = {
    FieldError: 400,
    NotFoundError: 404,
    CheckpointNotFound: 404,
    ConflictError: 409,
    StorageFull: 507,
    CheckpointCorrupt: 500,
    CheckpointError: 500,
}


def build_app(service: MtcService) -> FastAPI:
    """The server's ASGI app over ``service``."""
    app = FastAPI(title="trainguard MTC server", docs_url=None, redoc_url=None)
    _namespace_routes(app, service)
    _shard_routes(app, service)
    _cluster_routes(app, service)
    for kind, code in STATUS_OF.items():
        app.add_exception_handler(kind, _handler(code))
    app.add_middleware(RequestCounter, metrics=service.metrics)
    guard(app, authorize=None, max_body=service.limits.max_shard_bytes)
    app.add_middleware(ProxyFormMiddleware)
    return app


def _local(request: Request) -> bool:
    return PEER_HEADER in request.headers


def _shard_key(rank: str, step: str, ranks: int) -> tuple[int, int]:
    return (
        int_field(rank, "rank", low=0, high=ranks - 1),
        int_field(step, "step", low=0, high=MAX_STEP),
    )


def _namespace_routes(app: FastAPI, service: MtcService) -> None:
    limits = service.limits

    @app.get(NS, name="get_namespace")
    def get_namespace(namespace: str, request: Request) -> dict[str, int]:
        return service.namespace(namespace_name(namespace), local=_local(request)).as_json()

    @app.post(NS, name="create_namespace")
    def create_namespace(
        namespace: str, request: Request, num_ranks: str | None = None, steps_retained: str = "3"
    ) -> dict[str, str]:
        config = NamespaceConfig(
            num_ranks=int_field(num_ranks, "num_ranks", low=1, high=limits.max_ranks),
            steps_retained=int_field(
                steps_retained, "steps_retained", low=1, high=limits.max_steps_retained
            ),
        )
        created = service.create_namespace(namespace_name(namespace), config, local=_local(request))
        return {"status": "created" if created else "exists"}

    @app.delete(NS, name="delete_namespace")
    def delete_namespace(namespace: str, request: Request) -> dict[str, str]:
        service.delete_namespace(namespace_name(namespace), local=_local(request))
        return {"status": "deleted"}


def _shard_routes(app: FastAPI, service: MtcService) -> None:
    ranks = service.limits.max_ranks

    @app.get(LATEST, name="latest")
    def latest(namespace: str, request: Request, limit: str = "5") -> list[int]:
        count = int_field(limit, "limit", low=1, high=service.limits.max_latest)
        return service.latest(namespace_name(namespace), count, local=_local(request))

    @app.post(SHARD, name="put_checkpoint")
    async def put_checkpoint(namespace: str, rank: str, step: str, request: Request) -> Any:
        name = namespace_name(namespace)
        rank_n, step_n = _shard_key(rank, step, ranks)
        meta = shardmeta.parse(request.headers.get(shardmeta.HEADER))
        body = await request.body()
        local = _local(request)
        await run_in_threadpool(service.put, name, rank_n, step_n, body, meta, local=local)
        return {"status": "ok"}

    @app.get(SHARD, name="get_checkpoint")
    def get_checkpoint(namespace: str, rank: str, step: str, request: Request) -> Response:
        rank_n, step_n = _shard_key(rank, step, ranks)
        body, header = service.get(namespace_name(namespace), rank_n, step_n, local=_local(request))
        headers = {shardmeta.HEADER: header}
        return Response(body, media_type="application/octet-stream", headers=headers)

    @app.delete(SHARD, name="delete_checkpoint")
    def delete_checkpoint(namespace: str, rank: str, step: str, request: Request) -> Any:
        rank_n, step_n = _shard_key(rank, step, ranks)
        service.delete(namespace_name(namespace), rank_n, step_n, local=_local(request))
        return {"status": "deleted"}

    @app.get(INVENTORY_ROUTE, name="inventory")
    def inventory(namespace: str) -> dict[str, Any]:
        held = service.inventory(namespace_name(namespace))
        return {"ranks": {str(rank): steps for rank, steps in held.items()}}


def _cluster_routes(app: FastAPI, service: MtcService) -> None:
    @app.post(RESET, name="reset")
    def reset(request: Request) -> dict[str, str]:
        service.reset(local=_local(request))
        return {"status": "reset"}

    @app.get("/health", name="health")
    def health() -> dict[str, str]:
        return {"status": "healthy"}

    @app.get("/metrics", name="metrics")
    def metrics() -> Response:
        service.metrics.memory_used.set(service.store.used_bytes())
        service.metrics.memory_limit.set(service.limits.memory_bytes)
        service.metrics.peer_errors.set(service.peers.errors)
        service.metrics.peers.set(len(service.peers.urls))
        return Response(service.metrics.exposition(), media_type="text/plain; version=0.0.4")


def _handler(code: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": quote(str(exc))}, status_code=code)

    return handle


class RequestCounter:
    """ASGI middleware: count each request by route name and status code.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware``
    re-streams every response body through a queue, which for a shard of hundreds of MB costs
    more than the read itself.
    """

    def __init__(self, app: ASGIApp, *, metrics: MtcMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; count it once the response has started (or failed)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            operation = getattr(scope.get("route"), "name", None) or "unmatched"
            self.metrics.requests.labels(operation, str(status)).inc()
