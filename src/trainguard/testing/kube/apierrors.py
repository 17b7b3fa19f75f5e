"""API errors as the real API server reports them: a ``metav1.Status`` body with reason and code.

Clients branch on ``reason`` and ``code`` (lightkube raises ``ApiError`` carrying the Status,
kubectl prints ``Error from server (NotFound): ...``, client-go retries 409/429/5xx), so every
failure in the fake goes through one exception that knows how to render itself exactly so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CONFLICT_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


@dataclass
class ApiError(Exception):
    """A request the API server refuses; `status()` is the body it answers with."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    retry_after: int | None = None

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def status(self) -> dict[str, Any]:
        """The ``metav1.Status`` document for this error."""
        return failure_status(self.code, self.reason, self.message, self.details)


def failure_status(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``metav1.Status`` failure body, as a real API server sends for an error."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def _qualified(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(group: str, resource: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return details


def not_found(group: str, resource: str, name: str) -> ApiError:
    """404 for a missing object, worded as kube-apiserver words it."""
    message = f'{_qualified(group, resource)} "{name}" not found'
    return ApiError(404, "NotFound", message, _details(group, resource, name))


def already_exists(group: str, resource: str, name: str) -> ApiError:
    message = f'{_qualified(group, resource)} "{name}" already exists'
    return ApiError(409, "AlreadyExists", message, _details(group, resource, name))


def conflict(group: str, resource: str, name: str, why: str = CONFLICT_MESSAGE) -> ApiError:
    message = f'Operation cannot be fulfilled on {_qualified(group, resource)} "{name}": {why}'
    return ApiError(409, "Conflict", message, _details(group, resource, name))


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid; ``causes`` are ``(field path, message)`` pairs, each named in the body."""
    summary = ", ".join(f"{path}: {message}" for path, message in causes)
    details: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "causes": [
            {"reason": "FieldValueInvalid", "message": message, "field": path}
            for path, message in causes
        ],
    }
    if group:
        details["group"] = group
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    """410 Expired: the resourceVersion asked for is older than the history kept."""
    return ApiError(410, "Expired", message)


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def too_many_requests(retry_after: int = 1) -> ApiError:
    message = "Too many requests, please try again later."
    return ApiError(
        429, "TooManyRequests", message, {"retryAfterSeconds": retry_after}, retry_after
    )


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        f"application/json, application/merge-patch+json; got {content_type!r}",
    )
