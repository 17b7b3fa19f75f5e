"""Injected API failures, so clients' retry and relist paths run against real HTTP errors.

``server.faults.inject(verb="update", resource="hyperpodpytorchjobs/status", status=409,
times=2)`` makes the next two matching requests fail exactly as the real server would fail
them (same ``Status`` body and, for 429, ``Retry-After``); ``status=DROP`` closes the
connection without an answer, as a crashed API server or a broken proxy does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

from trainguard.testing.kube.apierrors import CONFLICT_MESSAGE, ApiError, too_many_requests

DROP: Final = 0
"""``status`` for a fault that drops the connection instead of answering."""

_ANSWERS: Final = {
    409: ApiError(409, "Conflict", f"Operation cannot be fulfilled: {CONFLICT_MESSAGE}"),
    410: ApiError(410, "Expired", "too old resource version (injected fault)"),
    500: ApiError(500, "InternalError", "Internal error occurred: injected fault"),
    503: ApiError(
        503, "ServiceUnavailable", "the server is currently unable to handle the request"
    ),
}


@dataclass
class Fault:
    """Fail the next ``times`` requests with this verb and resource (None matches any)."""

    verb: str | None
    resource: str | None
    status: int
    times: int

    def matches(self, verb: str, resource: str) -> bool:
        return self.verb in (None, verb) and self.resource in (None, resource)


class Faults:
    """The server's fault table; thread-safe, consumed first-in first-out."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def inject(
        self, *, verb: str | None = None, resource: str | None = None, status: int, times: int = 1
    ) -> None:
        """Make the next ``times`` matching requests fail with ``status`` (or `DROP`).

        Args:
            verb: RBAC verb (get, list, watch, create, update, patch, delete, deletecollection).
            resource: ``pods``, or ``pods/status`` for a subresource.
            status: 409, 410, 429, 500, 503, or `DROP`.
            times: how many requests fail.

        Raises:
            ValueError: for a status the fake cannot produce.
        """
        if status != DROP and status not in _ANSWERS and status != 429:
            raise ValueError(f"status: {status} is not one of 409, 410, 429, 500, 503, DROP")
        with self._lock:
            self._faults.append(Fault(verb, resource, status, times))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, verb: str, resource: str) -> int | None:
        """The status to fail this request with, consuming one use of the fault; None: no fault."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(verb, resource):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault.status
        return None


def error_for(status: int) -> ApiError:
    """The `ApiError` an injected ``status`` answers with."""
    if status == 429:
        return too_many_requests(1)
    return _ANSWERS[status]
