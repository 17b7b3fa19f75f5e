"""The controller's HTTP endpoint where agents push their status on every state change.

Push makes detection independent of the poll interval: a worker crash reaches the controller
within the agent's detection time plus one local HTTP request. Each push must carry the job's
agent token, so a process that is not the pod's agent cannot fake a fault or a completion.

The token is checked from the headers alone, before the body is read (`trainguard.httpguard`
caps bodies and connections too): a token names a job, not a pod, so no body is needed to
refuse a stranger. `TokenIndex` maps tokens to job uids, not to pod names: a job deleted and
re-created under the same name has new pods of the old names and a new token, and its agents
must be accepted while the old job's agents are refused.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from trainguard.agent.protocol import CallbackPayload
from trainguard.controller.agents import AgentHub
from trainguard.errors import InfrastructureError
from trainguard.httpguard import PRINCIPAL, guard, server_config
from trainguard.store.base import Store

CALLBACK_PATH = "/v1/agent-status"
MAX_CONNECTIONS = 1024
"""Connections the callback endpoint holds at most (each agent keeps one alive for 5 s)."""
TOKEN_RESCAN_INTERVAL_S = 0.25
"""Unknown tokens rescan the store's jobs at most this often (wrong tokens cost little)."""


@dataclass(frozen=True)
class JobIdentity:
    """The job a token belongs to; ``uid`` tells a re-created job from the deleted one."""

    namespace: str
    name: str
    uid: str


class TokenIndex:
    """Which job a bearer token belongs to, checked against the store on every use.

    Entries are keyed by the token's SHA-256 digest (a dict lookup on a digest tells a caller
    nothing about the token's bytes) and hold the job's uid. An entry whose job is gone, or whose
    name now belongs to a job with another uid, is dropped when used, so a deleted job's token is
    refused from then on whichever controller deleted it. A token not in the index waits for the
    next scan of the store that starts after it arrived; scans start at most every
    `TOKEN_RESCAN_INTERVAL_S` and answer every token waiting, so a flood of wrong tokens costs a
    few scans a second while a new job's token is accepted within that interval.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._jobs: dict[bytes, JobIdentity] = {}
        self._cond = threading.Condition()
        self._scanned_at = -math.inf

    def lookup(self, token: str) -> JobIdentity | None:
        """The job of ``token``, or None when no current job has it."""
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        arrived = time.monotonic()
        with self._cond:
            if digest not in self._jobs:
                self._scan_since(arrived)
            job = self._jobs.get(digest)
            if job is not None and not self._current(job):
                del self._jobs[digest]
                return None
            return job

    def _scan_since(self, arrived: float) -> None:
        """Return once a scan that started at or after ``arrived`` is done (lock held)."""
        while self._scanned_at < arrived:
            pause = self._scanned_at + TOKEN_RESCAN_INTERVAL_S - time.monotonic()
            if pause > 0:
                self._cond.wait(pause)
                continue
            self._scanned_at = time.monotonic()
            self._jobs = {
                hashlib.sha256(token.encode()).digest(): JobIdentity(r.namespace, r.name, r.uid)
                for r in self._store.list_jobs()
                if (token := r.state.token)
            }
            self._cond.notify_all()

    def _current(self, job: JobIdentity) -> bool:
        record = self._store.find_job(job.namespace, job.name)
        return record is not None and record.uid == job.uid


def callback_app(store: Store, hub: AgentHub) -> FastAPI:
    """The FastAPI app receiving agent pushes."""
    app = FastAPI(title="trainguard controller callbacks", docs_url=None, redoc_url=None)
    index = TokenIndex(store)

    async def authorize(token: str) -> object | None:
        return await run_in_threadpool(index.lookup, token)

    guard(app, authorize=authorize)

    @app.post(CALLBACK_PATH)
    def receive(payload: CallbackPayload, request: Request) -> dict[str, str]:
        job: JobIdentity = request.scope["state"][PRINCIPAL]
        if not any(p.name == payload.pod for p in store.list_pods(job.namespace, job.name)):
            raise HTTPException(status_code=401, detail="not a pod of this token's job")
        hub.push(payload.pod, payload.status)
        return {"ok": "true"}

    return app


class CallbackServer:
    """Runs `callback_app` with uvicorn in a daemon thread on ``host:port``."""

    def __init__(
        self,
        app: FastAPI,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        advertise: str | None = None,
    ) -> None:
        config = server_config(
            app,
            host=host,
            port=port,
            max_connections=MAX_CONNECTIONS,
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="callbacks", daemon=True)
        self.host = host
        self.advertise = advertise or host
        """The address agents are told to push to (the pod IP when bound to 0.0.0.0)."""

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the callback URL."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise InfrastructureError("the controller callback server did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://{self.advertise}:{port}{CALLBACK_PATH}"

    def stop(self) -> None:
        """Stop serving."""
        self._server.should_exit = True
        self._thread.join(timeout=5)
