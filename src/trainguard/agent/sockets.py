"""The agent's side of the worker socket (`trainguard.ipc` framing).

One thread per connection (a node has a handful of workers, and a handler such as a peer fetch
may take seconds without stalling the others). Handlers are looked up by message ``type`` in a
dict that extensions can add to (`SocketServer.register`). An unknown type, or a handler that
rejects the message (raises ``ValueError``, ``KeyError`` or ``TypeError``), gets an
``invalid_response`` with the reason, never a dropped connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socketserver
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainguard import ipc
from trainguard.permissions import PRIVATE_FILE

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    owner: SocketServer


class _Connection(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        while True:
            try:
                message = ipc.read_message(self.request)
            except (OSError, ValueError) as exc:
                log.debug("worker socket: %s", exc)
                return
            if message is None:
                return
            reply = self.server.owner.dispatch(message)
            try:
                self.request.sendall(ipc.encode(reply))
            except OSError:
                return


class SocketServer:
    """Serves worker messages on a Unix socket in background threads.

    Args:
        path: socket path; HyperPod's name under the temp dir by default.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        default = Path(tempfile.gettempdir()) / f"hyperpod_elastic_agent_{os.getpid()}.sock"
        self.path = Path(path) if path else default
        self._handlers: dict[str, Handler] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def register(self, kind: str, handler: Handler) -> None:
        """Answer messages of type ``kind`` with ``handler(message)``.

        Raises:
            ValueError: ``kind`` already has a handler.
        """
        if kind in self._handlers:
            raise ValueError(f"worker socket message type {kind!r} already has a handler")
        self._handlers[kind] = handler

    def dispatch(self, message: dict[str, Any]) -> dict[str, Any]:
        """The reply to one message."""
        kind = str(message.get("type", ""))
        handler = self._handlers.get(kind)
        if handler is None:
            return _invalid(kind, f"unknown message type {kind!r}")
        try:
            return {"type": kind, **handler(message)}
        except (KeyError, TypeError, ValueError) as exc:
            return _invalid(kind, f"{type(exc).__name__}: {exc}")

    def start(self) -> None:
        """Bind and serve."""
        self.path.unlink(missing_ok=True)
        server = _Server(str(self.path), _Connection)
        # Connecting needs write permission on the socket file: only our own workers may.
        os.chmod(self.path, PRIVATE_FILE)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.name = "worker-socket"
        self._thread.start()

    def close(self) -> None:
        """Stop serving and remove the socket file."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def _invalid(kind: str, error: str) -> dict[str, Any]:
    return {"type": ipc.INVALID_RESPONSE, "request": kind, "error": error}
