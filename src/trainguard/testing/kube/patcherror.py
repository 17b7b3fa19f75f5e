"""The one error the fake API server's patch machinery raises.

`patch`, `smp` and `apply` are pure functions over JSON-like dicts; when a request cannot be
applied they raise `PatchError` carrying exactly what the server must answer: the HTTP code, the
`Status.reason` (``BadRequest``, ``Conflict``, ``Invalid``, ``UnsupportedMediaType``) and the
``details.causes``. The server turns it into a ``Status`` object at its boundary, so these modules
never know about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainguard.errors import UserError
from trainguard.testing.kube.apierrors import failure_status


@dataclass
class PatchError(UserError):
    """A patch request the API server refuses, with the Status it answers."""

    code: int
    reason: str
    message: str
    causes: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def status(self) -> dict[str, Any]:
        """The ``meta.k8s.io/v1 Status`` body a real API server sends for this error."""
        details = {"causes": self.causes} if self.causes else None
        return failure_status(self.code, self.reason, self.message, details)


def bad_request(message: str) -> PatchError:
    """A 400 BadRequest: the patch body is not what its content type promises."""
    return PatchError(code=400, reason="BadRequest", message=message)


def invalid(message: str, *, field_path: str = "") -> PatchError:
    """A 422 Invalid: the patch is well-formed but cannot be applied to this object."""
    causes = [{"type": "FieldValueInvalid", "message": message, "field": field_path}]
    return PatchError(code=422, reason="Invalid", message=message, causes=causes)
