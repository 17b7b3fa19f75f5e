"""Pushing the agent's status to the controller on every state change.

A crash must reach the controller within the agent's detection time plus one local request, not
a poll interval later. The push must never slow the monitor loop down, so a background thread
sends the newest status; statuses that pile up while a send is in flight are coalesced except
for the newest (the controller wants the latest state, and ``transitions`` carries the history).
A failed push is logged and dropped: the controller's polling is the fallback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx

from trainguard.agent.protocol import AUTH_HEADER, AUTH_SCHEME, AgentStatus, CallbackPayload

log = logging.getLogger(__name__)
TIMEOUT = 3.0

UrlSource = Callable[[], str | None]


class CallbackPusher:
    """Sends ``{"pod", "status"}`` to the URL ``url()`` returns (nothing when it returns None).

    Args:
        pod: this pod's name.
        token: bearer token for the controller (the job's agent token).
        url: returns the current callback URL (it arrives with ``/start``).
        transport: an httpx transport (tests).
    """

    def __init__(
        self,
        *,
        pod: str,
        token: str | None,
        url: UrlSource,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {AUTH_HEADER: f"{AUTH_SCHEME} {token}"} if token else {}
        self._http = httpx.Client(headers=headers, timeout=TIMEOUT, transport=transport)
        self._pod, self._url = pod, url
        self._latest: AgentStatus | None = None
        self._wake = threading.Condition()
        self._closed = False
        self.sent = 0
        self._thread = threading.Thread(target=self._loop, name="callback-push", daemon=True)
        self._thread.start()

    def __call__(self, status: AgentStatus) -> None:
        """Queue ``status`` for sending (replaces a status not sent yet)."""
        if self._url() is None:
            return
        with self._wake:
            self._latest = status
            self._wake.notify()

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (within ``timeout``), then stop."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout)
        self._http.close()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while self._latest is None and not self._closed:
                    self._wake.wait()
                status, self._latest = self._latest, None
                closed = self._closed
            if status is not None:
                self._send(status)
            if closed and status is None:
                return

    def _send(self, status: AgentStatus) -> None:
        url = self._url()
        if url is None:
            return
        payload = CallbackPayload(pod=self._pod, status=status)
        body = payload.model_dump(mode="json", by_alias=True, exclude_none=True)
        try:
            response = self._http.post(url, json=body)
            if response.status_code >= 400:
                log.warning("status push to %s: HTTP %d", url, response.status_code)
            else:
                self.sent += 1
        except httpx.HTTPError as exc:
            log.warning("status push to %s failed: %s", url, exc)
