"""PATCH bodies by content type: the seam where each patch flavour plugs into the server.

The server looks the request's ``Content-Type`` up in `PatchHandlers` and stores what the
handler returns, with the usual update rules (status split, resourceVersion precondition).
JSON merge patch (RFC 7386) is built in; strategic merge, JSON patch (RFC 6902) and
server-side apply are pure functions in sibling modules that register themselves here by
content type, so the HTTP layer never changes when a flavour is added.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainguard.testing.kube.apierrors import bad_request
from trainguard.testing.kube.resources import ResourceType

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class PatchRequest:
    """What a patch handler may read besides the stored object and the patch document."""

    resource: ResourceType
    subresource: str
    field_manager: str | None
    force: bool


PatchHandler = Callable[[dict[str, Any] | None, Any, PatchRequest], dict[str, Any]]
"""``(stored object or None when absent, patch document, request) -> patched object``.

``None`` is passed only to a handler registered with ``creates=True`` (server-side apply
creates missing objects); the others get a 404 before they are called. Errors are raised as
`ApiError` (400 for a malformed patch, 422 naming a field)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, ``null`` deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_handler(
    stored: dict[str, Any] | None, patch: Any, request: PatchRequest
) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise bad_request("a merge patch must be a JSON object")
    merged = merge_patch(stored, patch)
    assert isinstance(merged, dict)
    return merged


@dataclass
class PatchHandlers:
    """Patch handlers by content type; ``creating`` lists those that may create a missing object."""

    handlers: dict[str, PatchHandler]
    creating: set[str]

    @classmethod
    def default(cls) -> PatchHandlers:
        return cls({MERGE_PATCH: _merge_handler}, set())

    def register(self, content_type: str, handler: PatchHandler, *, creates: bool = False) -> None:
        self.handlers[content_type] = handler
        if creates:
            self.creating.add(content_type)

    def find(self, content_type: str) -> PatchHandler | None:
        return self.handlers.get(content_type.split(";", maxsplit=1)[0].strip().lower())
