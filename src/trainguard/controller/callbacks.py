"""The controller's HTTP endpoint where agents push their status on every state change.

Push makes detection independent of the poll interval: a worker crash reaches the controller
within the agent's detection time plus one local HTTP request. Each push must carry the job's
agent token, so a process that is not the pod's agent cannot fake a fault or a completion.
"""

from __future__ import annotations

import hmac
import threading
import time

import uvicorn
from fastapi import FastAPI, Header, HTTPException

from trainguard.agent.protocol import AUTH_SCHEME, CallbackPayload
from trainguard.controller.agents import AgentHub
from trainguard.controller.state import JobState
from trainguard.errors import InfrastructureError
from trainguard.store.sqlite import SqliteStore

CALLBACK_PATH = "/v1/agent-status"


def callback_app(store: SqliteStore, hub: AgentHub) -> FastAPI:
    """The FastAPI app receiving agent pushes."""
    app = FastAPI(title="trainguard controller callbacks", docs_url=None, redoc_url=None)
    tokens: dict[str, str] = {}

    def token_of(pod_name: str) -> str | None:
        cached = tokens.get(pod_name)
        if cached is not None:
            return cached
        for pod in store.list_pods():
            if pod.name == pod_name:
                job = store.find_job(pod.namespace, pod.job)
                if job is not None:
                    tokens[pod_name] = JobState.model_validate(job.state).token
                    return tokens[pod_name]
        return None

    @app.post(CALLBACK_PATH)
    def receive(
        payload: CallbackPayload, authorization: str = Header(default="")
    ) -> dict[str, str]:
        expected = token_of(payload.pod)
        given = authorization.removeprefix(f"{AUTH_SCHEME} ")
        if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(status_code=401, detail="unknown pod or wrong token")
        hub.push(payload.pod, payload.status)
        return {"ok": "true"}

    return app


class CallbackServer:
    """Runs `callback_app` with uvicorn in a daemon thread on ``host:port``."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="callbacks", daemon=True)
        self.host = host

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the callback URL."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise InfrastructureError("the controller callback server did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://{self.host}:{port}{CALLBACK_PATH}"

    def stop(self) -> None:
        """Stop serving."""
        self._server.should_exit = True
        self._thread.join(timeout=5)
