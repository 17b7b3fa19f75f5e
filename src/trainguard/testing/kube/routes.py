"""The ASGI application: authentication, audit, injected faults, then discovery or a resource.

One plain ASGI callable instead of a route table, because the resource space changes while the
server runs (CRDs) and every resource URL has the same shape (`paths`). Non-resource URLs
(``/version``, ``/healthz``, ``/livez``, ``/readyz``) answer without a token, as they do for
anonymous users on a real cluster; everything else needs the bearer token (401 otherwise).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from trainguard.testing.kube import discovery, handlers
from trainguard.testing.kube.apierrors import ApiError, method_not_allowed, unauthorized
from trainguard.testing.kube.audit import AuditEntry, AuditLog
from trainguard.testing.kube.faults import DROP, Faults, error_for
from trainguard.testing.kube.handlers import HandlerContext
from trainguard.testing.kube.paths import Target, parse_resource_path

VERSION_INFO = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.0-trainguard-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24",
    "compiler": "gc",
    "platform": "linux/amd64",
}
PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})
OpenApiProvider = Callable[[str], dict[str, Any] | None]
"""``openapi(path) -> document or None`` for ``/openapi/v2`` and ``/openapi/v3[/...]``."""
Handler = Callable[[Request, Target, HandlerContext], Awaitable[Response]]


def error_response(error: ApiError) -> JSONResponse:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return JSONResponse(error.status(), status_code=error.code, headers=headers)


class ApiApp:
    """The fake API server's ASGI app."""

    def __init__(self, ctx: HandlerContext, *, token: str, faults: Faults, audit: AuditLog) -> None:
        self.ctx = ctx
        self.token = token
        self.faults = faults
        self.audit = audit
        self.openapi: OpenApiProvider | None = None
        self._handlers: dict[str, Handler] = {
            "get": handlers.handle_get,
            "list": handlers.handle_list,
            "watch": handlers.handle_list,
            "create": handlers.handle_create,
            "update": handlers.handle_update,
            "patch": handlers.handle_patch,
            "delete": handlers.handle_delete,
            "deletecollection": handlers.handle_delete,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            response = await self._dispatch(request)
        except ApiError as error:
            response = error_response(error)
        except _Dropped:
            _abort_connection(send)
            return
        await response(scope, receive, send)

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return hmac.compare_digest(header.encode(), f"Bearer {self.token}".encode())

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path.rstrip("/") or "/"
        if path in PUBLIC_PATHS:
            return JSONResponse(VERSION_INFO) if path == "/version" else PlainTextResponse("ok")
        if not self._authorized(request):
            raise unauthorized()
        if (document := self._non_resource(request, path)) is not None:
            return document
        target = parse_resource_path(self.ctx.api.registry, path)
        verb = target.rbac_verb(
            request.method, watch=request.query_params.get("watch") in ("1", "true", "True")
        )
        self._record(target, verb, request.headers.get("user-agent", ""))
        self._inject_fault(target, verb)
        handler = self._handlers.get(verb)
        if handler is None or (target.subresource in ("log",) and verb != "get"):
            raise method_not_allowed(
                f"the server does not allow this method ({request.method}) "
                "on the requested resource"
            )
        return await handler(request, target, self.ctx)

    def _record(self, target: Target, verb: str, user_agent: str) -> None:
        rtype = target.resource
        entry = AuditEntry(
            verb, rtype.group, rtype.resource, target.subresource, target.namespace or "",
            user_agent,
        )  # fmt: skip
        self.audit.record(entry)

    def _inject_fault(self, target: Target, verb: str) -> None:
        resource = target.resource.resource
        if target.subresource:
            resource = f"{resource}/{target.subresource}"
        status = self.faults.take(verb, resource)
        if status == DROP:
            raise _Dropped()
        if status is not None:
            raise error_for(status)

    def _non_resource(self, request: Request, path: str) -> Response | None:
        registry = self.ctx.api.registry
        accept = request.headers.get("accept", "")
        if path in ("/api", "/apis") and discovery.wants_aggregated(accept):
            body = discovery.aggregated(registry, core=path == "/api")
            return JSONResponse(body, media_type=discovery.AGGREGATED_MEDIA_TYPE)
        if path.startswith("/openapi/"):
            found = self.openapi(path) if self.openapi else None
            if found is None:
                raise ApiError(404, "NotFound", f"the server could not find {path}")
            return JSONResponse(found)
        documents: dict[str, Callable[[], dict[str, Any] | None]] = {
            "/api": discovery.api_versions,
            "/apis": lambda: discovery.api_group_list(registry),
            "/api/v1": lambda: discovery.api_resource_list(registry, "", "v1"),
        }
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            documents[path] = lambda: discovery.api_group(registry, parts[1])
        if parts[0] == "apis" and len(parts) == 3:
            documents[path] = lambda: discovery.api_resource_list(registry, parts[1], parts[2])
        if path not in documents:
            return None
        document = documents[path]()
        if document is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return JSONResponse(document)


class _Dropped(Exception):
    """An injected fault that closes the connection without an answer."""


def _abort_connection(send: Send) -> None:
    """Close the TCP connection under this request (uvicorn's cycle owns the transport)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: the ASGI server exposes no transport")
    transport.abort()
