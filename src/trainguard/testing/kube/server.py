"""`KubeApiServer`: the fake API server as an object a test starts, uses and stops.

uvicorn serves the ASGI app from a daemon thread on a socket bound to 127.0.0.1 port 0, so
parallel tests never fight over ports; `start` returns once ``/readyz`` answers. The same
object gives tests in-process access to what a real cluster would hide: the storage
(`objects`), fault injection (`faults`), the audit log (`audit`), and the log sources the fake
kubelet registers for ``pods/log``. It listens twice with the same token: plain HTTP on `url`
(for our httpx clients) and HTTPS with a self-signed certificate on `https_url`, which the
kubeconfig names, because kubectl will not send a bearer token over plain HTTP (`tls`).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn
import yaml

from trainguard.testing.kube import fidelity
from trainguard.testing.kube.api import KubeApi
from trainguard.testing.kube.audit import AuditLog
from trainguard.testing.kube.crds import CrdController
from trainguard.testing.kube.faults import Faults
from trainguard.testing.kube.gc import GarbageCollector
from trainguard.testing.kube.handlers import HandlerContext, TableRenderer
from trainguard.testing.kube.logs import LogSource
from trainguard.testing.kube.objects import DEFAULT_HISTORY, ObjectStore
from trainguard.testing.kube.routes import ApiApp, OpenApiProvider
from trainguard.testing.kube.tls import ServingCertificate, make_serving_certificate

CLUSTER_NAME = "trainguard-fake"
USER_NAME = "trainguard-admin"


class KubeApiServer:
    """A fake kube-apiserver on ``http://127.0.0.1:<port>``; also a context manager."""

    def __init__(
        self,
        *,
        token: str | None = None,
        history_limit: int = DEFAULT_HISTORY,
        bookmark_interval: float = 5.0,
        port: int = 0,
    ) -> None:
        self.token = token or secrets.token_urlsafe(24)
        self._requested_port = port  # the HTTPS listener (the kubeconfig's); 0 = any free port
        self.api = KubeApi(store=ObjectStore(history_limit=history_limit))
        CrdController(self.api).attach()
        GarbageCollector(self.api).attach()
        self.api.ensure_default_namespaces()
        self.faults = Faults()
        self.audit = AuditLog()
        self._ctx = HandlerContext(self.api, bookmark_interval=bookmark_interval)
        self._app = ApiApp(self._ctx, token=self.token, faults=self.faults, audit=self.audit)
        fidelity.install(
            self.api, set_table_renderer=self.set_table_renderer, set_openapi=self.set_openapi
        )
        self._servers: list[tuple[uvicorn.Server, threading.Thread]] = []
        self._certdir: tempfile.TemporaryDirectory[str] | None = None
        self._certificate: ServingCertificate | None = None
        self._port = 0
        self._https_port = 0

    @property
    def objects(self) -> ObjectStore:
        """The storage, for tests to inspect (writes through it skip the API's rules)."""
        return self.api.store

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("the server is not started: call start() first")
        return f"http://127.0.0.1:{self._port}"

    def register_log_source(self, source: LogSource) -> None:
        """Serve ``pods/log`` from ``source`` (the fake kubelet registers itself)."""
        self._ctx.logs.register(source)

    def unregister_log_source(self, source: LogSource) -> None:
        self._ctx.logs.unregister(source)

    def set_table_renderer(self, renderer: TableRenderer | None) -> None:
        """Answer ``Accept: ...;as=Table`` with ``renderer(resource, objects)``."""
        self._ctx.render_table = renderer

    def set_openapi(self, provider: OpenApiProvider | None) -> None:
        """Serve ``/openapi/v2`` and ``/openapi/v3/...`` from ``provider(path)``."""
        self._app.openapi = provider

    @property
    def https_url(self) -> str:
        """The HTTPS listener (same API, same token) that kubeconfigs point at."""
        if not self._https_port:
            raise RuntimeError("the server is not started: call start() first")
        return f"https://127.0.0.1:{self._https_port}"

    @property
    def ca_file(self) -> Path:
        """The PEM certificate that verifies `https_url` (its own CA)."""
        if self._certificate is None:
            raise RuntimeError("the server is not started: call start() first")
        return self._certificate.cert_file

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts `https_url` (``httpx.Client(verify=...)``)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def start(self, *, timeout: float = 10.0) -> KubeApiServer:
        """Serve from daemon threads; returns once the server answers ``/readyz``."""
        if self._servers:
            raise RuntimeError("the server is already started")
        self._ctx.stopping = False
        self._certdir = tempfile.TemporaryDirectory(prefix="trainguard-kubeapi-")
        self._certificate = make_serving_certificate(Path(self._certdir.name))
        self._port = self._listen(tls=False)
        self._https_port = self._listen(tls=True)
        self._wait_ready(timeout)
        return self

    def _listen(self, *, tls: bool) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._requested_port if tls else 0))
        certificate = self._certificate if tls else None
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            log_level="warning",
            http="h11",
            proxy_headers=False,
            timeout_graceful_shutdown=2,
            ssl_certfile=str(certificate.cert_file) if certificate else None,
            ssl_keyfile=str(certificate.key_file) if certificate else None,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=self._serve, args=(server, sock), name="kube-api-server", daemon=True
        )
        thread.start()
        self._servers.append((server, thread))
        return int(sock.getsockname()[1])

    @staticmethod
    def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
        asyncio.run(server.serve(sockets=[sock]))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                plain = httpx.get(f"{self.url}/readyz", timeout=1.0)
                secure = httpx.get(
                    f"{self.https_url}/readyz", timeout=1.0, verify=self.ssl_context()
                )
                if plain.status_code == secure.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"the fake API server did not answer on {self.url} within {timeout}s")

    def stop(self) -> None:
        """End watches, stop serving and join the threads."""
        self._ctx.stopping = True
        for server, _ in self._servers:
            server.should_exit = True
        for _, thread in self._servers:
            thread.join(timeout=10)
        self._servers.clear()
        if self._certdir is not None:
            self._certdir.cleanup()
            self._certdir = None

    def __enter__(self) -> KubeApiServer:
        return self if self._servers else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def kubeconfig(self, *, namespace: str = "default") -> dict[str, Any]:
        """A kubeconfig document pointing at this server's HTTPS listener with its token."""
        ca_data = base64.b64encode(self.ca_file.read_bytes()).decode()
        cluster = {"server": self.https_url, "certificate-authority-data": ca_data}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CLUSTER_NAME, "cluster": cluster}],
            "users": [{"name": USER_NAME, "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": CLUSTER_NAME,
                    "context": {"cluster": CLUSTER_NAME, "user": USER_NAME, "namespace": namespace},
                }
            ],
            "current-context": CLUSTER_NAME,
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        """Write `kubeconfig` to ``path`` (mode 0600, as it holds the token); returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.kubeconfig(namespace=namespace), sort_keys=False))
        target.chmod(0o600)
        return target
