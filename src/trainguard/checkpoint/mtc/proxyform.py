"""Accept the library's requests when they arrive through ``http_proxy``.

The library builds its client with ``InMemoryClientConfig()`` inside the DCP writer and reader,
so its base URL is always HyperPod's default,
``http://ai-toolkit-gossip-headless.aws-hyperpod.svc.cluster.local:9200``, and it reads no
environment variable to change it. On a cluster a headless Service of that name resolves to the
servers. Off a cluster, `requests` honours ``http_proxy``: pointed at this server, the client
sends absolute-form requests (``GET http://ai-toolkit-.../v1/cp/... HTTP/1.1``), which this
middleware turns back into plain paths — so an unmodified script reaches the node-local server.

It serves only that host name: this is not an open proxy, and a request for any other host is
answered 421 Misdirected Request.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

HYPERPOD_SERVICE_HOST = "ai-toolkit-gossip-headless.aws-hyperpod.svc.cluster.local"
"""The host of the library's default base URL (HyperPod's headless Service)."""
HYPERPOD_DEFAULT_URL = f"http://{HYPERPOD_SERVICE_HOST}:9200"


class ProxyFormMiddleware:
    """ASGI middleware: absolute-form request targets for the HyperPod host become paths."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite ``scope`` for an absolute-form target, or refuse a foreign host."""
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(("http://", "https://")):
            await self.app(scope, receive, send)
            return
        target = urlsplit(path)
        if target.hostname != HYPERPOD_SERVICE_HOST:
            refusal = PlainTextResponse(
                f"host: only {HYPERPOD_SERVICE_HOST} is served here", status_code=421
            )
            await refusal(scope, receive, send)
            return
        rewritten = dict(scope)
        rewritten["path"] = target.path or "/"
        rewritten["raw_path"] = (target.path or "/").encode()
        await self.app(rewritten, receive, send)
