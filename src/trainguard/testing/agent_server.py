"""Many fake agents behind one real HTTP server, for testing the controller at scale.

Each fake answers the agent API (``/status``, ``/start``, ``/stop``, ``/update``,
``/shutdown``, ``/logs``) under ``/agents/<pod>/``, with the real request models, the real
state table and bearer-token checks, so the controller talks real HTTP to thousands of
"agents" without thousands of processes. `HttpFakeBackend` creates pods as fakes on it.
"""

from __future__ import annotations

import hmac
import threading
from typing import Any

from fastapi import FastAPI, Header, HTTPException

from trainguard.agent.protocol import AUTH_SCHEME, StartRequest, StopRequest, UpdateRequest
from trainguard.backends.base import PodLaunch
from trainguard.controller.callbacks import CallbackServer
from trainguard.errors import ConflictError
from trainguard.store.base import Store
from trainguard.store.records import PodRecord
from trainguard.testing.agents import FakeAgent, FakeBackend


class FakeAgentServer:
    """An HTTP server hosting fake agents; start it with `start`, stop with `stop`."""

    def __init__(self) -> None:
        self.agents: dict[str, FakeAgent] = {}
        self.tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self.app = self._build()
        self._server = CallbackServer(self.app)
        self.base_url = ""

    def start(self) -> str:
        """Serve; returns the base URL (``http://127.0.0.1:<port>``)."""
        callback_url = self._server.start()
        self.base_url = callback_url.split("/v1/", 1)[0]
        return self.base_url

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    def add(self, pod: str, token: str, agent: FakeAgent) -> str:
        """Host ``agent`` for ``pod``; returns its base URL."""
        with self._lock:
            self.agents[pod], self.tokens[pod] = agent, token
        return f"{self.base_url}/agents/{pod}"

    def _agent(self, pod: str, authorization: str) -> FakeAgent:
        token = self.tokens.get(pod)
        given = authorization.removeprefix(f"{AUTH_SCHEME} ")
        if token is None or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(status_code=401, detail="unauthorized")
        return self.agents[pod]

    def _build(self) -> FastAPI:
        app = FastAPI(docs_url=None, redoc_url=None)

        def guarded(call: Any) -> Any:
            try:
                return call()
            except ConflictError as exc:
                raise HTTPException(status_code=409, detail=str(exc)) from exc

        @app.get("/agents/{pod}/status")
        def status(pod: str, authorization: str = Header(default="")) -> dict[str, Any]:
            return self._agent(pod, authorization).status().to_wire()

        @app.post("/agents/{pod}/start")
        def start(pod: str, body: StartRequest, authorization: str = Header(default="")) -> None:
            guarded(lambda: self._agent(pod, authorization).start(body))

        @app.post("/agents/{pod}/stop")
        def stop(
            pod: str, body: StopRequest | None = None, authorization: str = Header(default="")
        ) -> None:
            guarded(lambda: self._agent(pod, authorization).stop(body))

        @app.post("/agents/{pod}/update")
        def update(pod: str, body: UpdateRequest, authorization: str = Header(default="")) -> None:
            self._agent(pod, authorization).update(body)

        @app.post("/agents/{pod}/shutdown")
        def shutdown(pod: str, authorization: str = Header(default="")) -> None:
            guarded(lambda: self._agent(pod, authorization).shutdown())

        @app.get("/agents/{pod}/logs")
        def logs(
            pod: str, rank: int, tail: int = 100, authorization: str = Header(default="")
        ) -> dict[str, Any]:
            return {"lines": self._agent(pod, authorization).logs(rank=rank, tail=tail)}

        return app


class HttpFakeBackend(FakeBackend):
    """`FakeBackend` whose agents are reached over HTTP on a `FakeAgentServer`."""

    name = "http-fake"

    def __init__(self, store: Store, server: FakeAgentServer, *, nproc: int = 2) -> None:
        super().__init__(store, nproc=nproc)
        self.server = server

    def create_pod(self, launch: PodLaunch, *, now: float) -> PodRecord:
        """Create the pod's fake agent on the server."""
        pod = super().create_pod(launch, now=now)
        pod.info["url"] = self.server.add(launch.pod, launch.token, self.agents[launch.pod])
        return pod
