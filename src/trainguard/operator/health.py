"""``/healthz`` and ``/readyz`` for the operator's Deployment probes.

Liveness and readiness answer different questions, as in controller-runtime: ``/healthz`` says
the process is not wedged (its loop has beaten within ``stale_after`` seconds — a liveness probe
that fails restarts the container, which is what a deadlocked loop needs), ``/readyz`` says the
operator can do its work (its caches are synced). A standby replica waiting for the Lease is
alive and ready: it must not be restarted for waiting, and it must be ready to take over.

Served by the standard library's threading HTTP server: two fixed routes with no body to parse
need no framework, and the probes keep answering while the loop is busy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from trainguard.clock import Clock, SystemClock

STALE_AFTER = 60.0
"""Seconds without a loop heartbeat after which ``/healthz`` fails."""


class Probes:
    """What the probes report: the loop's heartbeat and whether the caches are synced."""

    def __init__(
        self,
        *,
        ready: Callable[[], bool],
        clock: Clock | None = None,
        stale_after: float = STALE_AFTER,
    ) -> None:
        self.clock = clock or SystemClock()
        self._ready = ready
        self.stale_after = stale_after
        self._last_beat = self.clock.monotonic()
        self.leading = False

    def beat(self) -> None:
        """The loop is alive (called once per iteration, leading or standing by)."""
        self._last_beat = self.clock.monotonic()

    def health(self) -> tuple[bool, dict[str, object]]:
        """Whether the loop beat recently, with the facts behind the answer."""
        age = self.clock.monotonic() - self._last_beat
        return age <= self.stale_after, {"loop_seconds_since_beat": round(age, 3)}

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Whether the caches are synced, and whether this replica leads."""
        synced = bool(self._ready())
        return synced, {"synced": synced, "leading": self.leading}


class ProbeServer:
    """Serves `Probes` on ``host:port`` from a daemon thread (port 0: any free port)."""

    def __init__(self, probes: Probes, *, host: str = "0.0.0.0", port: int = 8081) -> None:
        routes: dict[str, Callable[[], tuple[bool, dict[str, object]]]] = {
            "/healthz": probes.health,
            "/livez": probes.health,
            "/readyz": probes.readiness,
        }
        self._server = ThreadingHTTPServer((host, port), _handler(routes))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="probes", daemon=True
        )

    def start(self) -> None:
        """Start answering probes."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering probes."""
        self._server.shutdown()
        self._server.server_close()


def _handler(
    routes: dict[str, Callable[[], tuple[bool, dict[str, object]]]],
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            probe = routes.get(self.path.split("?", 1)[0])
            if probe is None:
                self._answer(404, {"error": f"no route {self.path}"})
                return
            ok, facts = probe()
            self._answer(200 if ok else 503, {"ok": ok, **facts})

        def _answer(self, code: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            del format, args  # probes every few seconds would flood the operator's log

    return Handler
