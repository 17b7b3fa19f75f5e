"""The controller's typed client for an agent's HTTP control API.

One `AgentClient` per pod. Network and HTTP errors become `AgentError` (temporary: the agent
may be starting, restarting or gone; the controller decides by observing, not by retrying
here). A 409 (the agent's state table refused the request) becomes `ConflictError`, so a
controller that re-sends ``/start`` after a restart of its own can tell "already done" from
"failed".
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from trainguard.agent.protocol import (
    AUTH_HEADER,
    AUTH_SCHEME,
    AgentStatus,
    StartRequest,
    StopRequest,
    UpdateRequest,
)
from trainguard.errors import AgentError, AuthError, ConflictError

DEFAULT_TIMEOUT = 3.0


class AgentClient:
    """Talks to one agent at ``base_url`` with a bearer ``token``.

    Args:
        base_url: e.g. ``http://127.0.0.1:41231``.
        token: the job's agent token; None only for agents run with --insecure-no-auth.
        timeout: seconds per request.
        transport: an httpx transport (tests pass `httpx.MockTransport`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {AUTH_HEADER: f"{AUTH_SCHEME} {token}"} if token else {}
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def status(self) -> AgentStatus:
        """``GET /status``."""
        body = self._call("GET", "/status")
        try:
            return AgentStatus.model_validate(body)
        except ValidationError as exc:
            raise AgentError(f"{self.base_url}/status: unexpected answer: {exc}") from exc

    def start(self, request: StartRequest) -> None:
        """``POST /start``."""
        self._call("POST", "/start", request)

    def stop(self, request: StopRequest | None = None) -> None:
        """``POST /stop``."""
        self._call("POST", "/stop", request or StopRequest())

    def update(self, request: UpdateRequest) -> None:
        """``POST /update``."""
        self._call("POST", "/update", request)

    def shutdown(self) -> None:
        """``POST /shutdown``."""
        self._call("POST", "/shutdown")

    def logs(self, *, rank: int, tail: int = 100) -> list[str]:
        """The last ``tail`` log lines of the worker with global rank ``rank``."""
        body = self._call("GET", "/logs", params={"rank": rank, "tail": tail})
        lines = body.get("lines", []) if isinstance(body, dict) else body
        return [str(line) for line in lines]

    def _call(
        self,
        method: str,
        path: str,
        body: BaseModel | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        payload = body.model_dump(mode="json", by_alias=True, exclude_none=True) if body else None
        try:
            response = self._http.request(method, path, json=payload, params=params)
        except httpx.HTTPError as exc:
            raise AgentError(f"{method} {self.base_url}{path}: {exc}") from exc
        if response.status_code == 401:
            raise AuthError(f"{method} {self.base_url}{path}: agent refused the token")
        if response.status_code == 409:
            raise ConflictError(f"{method} {self.base_url}{path}: {response.text}")
        if response.status_code >= 400:
            raise AgentError(
                f"{method} {self.base_url}{path}: HTTP {response.status_code}: {response.text}"
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None
