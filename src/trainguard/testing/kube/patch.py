"""Apply a PATCH body to a live object by its content type, as the Kubernetes API server does.

The server's PATCH handler calls `apply_patch` with the stored object and the raw request body;
this module picks the semantics from the ``Content-Type``:

* ``application/merge-patch+json`` — RFC 7386 JSON merge patch (lists replaced, null deletes);
* ``application/json-patch+json`` — RFC 6902 (via ``jsonpatch``); a failing ``test`` op or a path
  that does not exist is 422 Invalid, as the real server answers;
* ``application/strategic-merge-patch+json`` — `smp.strategic_merge` for built-in kinds, 415
  UnsupportedMediaType for custom resources (kubectl then falls back to a merge patch);
* ``application/apply-patch+yaml`` — server-side apply (`apply.server_side_apply`), which also
  needs the field manager and ``force``.

Errors are `PatchError` (400 malformed body, 409 apply conflict, 415 unsupported type, 422 not
applicable) and the server maps them to a ``Status``. The server keeps immutable fields
(name, uid, resourceVersion checks) itself; this module only computes the patched object.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonpatch
import yaml

from trainguard.testing.kube import apply, smp
from trainguard.testing.kube.patcherror import PatchError, bad_request, invalid

JsonMap = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
CBOR_APPLY_PATCH = "application/apply-patch+cbor"


@dataclass(frozen=True)
class PatchRequest:
    """Everything about one PATCH request that decides its result, besides the body."""

    content_type: str
    """The request's Content-Type (parameters such as ``charset`` are ignored)."""
    kind: str
    """The kind of the patched object; decides strategic-merge metadata."""
    custom: bool = False
    """Whether the object is a custom resource (no strategic merge patch)."""
    field_manager: str | None = None
    """The ``fieldManager`` query parameter (required for server-side apply)."""
    force: bool = False
    """The ``force`` query parameter of server-side apply."""
    now: datetime | None = None
    """The time recorded in ``managedFields`` (server-side apply); the server's clock."""
    crd_list_keys: Callable[[str], tuple[str, ...] | None] | None = None
    """For custom resources: map keys of the list at a dotted path from the CRD schema."""


def media_type(content_type: str) -> str:
    """The bare media type of a Content-Type header (``a/b; charset=utf-8`` -> ``a/b``)."""
    return content_type.split(";", 1)[0].strip().lower()


def apply_patch(live: JsonMap | None, body: bytes, request: PatchRequest) -> JsonMap:
    """The object that results from applying the raw `body` of `request` to `live`.

    Raises:
        PatchError: with the HTTP code and reason the server answers.
    """
    media = media_type(request.content_type)
    if media == APPLY_PATCH:
        return apply_document(live, _yaml_body(body), request)
    if media == JSON_PATCH:
        return apply_document(live, _json_body(body, list), request)
    if media in (MERGE_PATCH, STRATEGIC_MERGE_PATCH):
        return apply_document(live, _json_body(body, dict), request)
    raise unsupported(media, f"the server does not support the patch type {media!r}")


def apply_document(live: JsonMap | None, document: Any, request: PatchRequest) -> JsonMap:
    """Like `apply_patch` for a body already decoded (JSON, or YAML for server-side apply).

    `live` is None when the object does not exist: only server-side apply creates it; the other
    patch types answer 404.
    """
    media = media_type(request.content_type)
    if media == APPLY_PATCH:
        return apply.server_side_apply(live, _shaped(document, dict), _apply_options(request))
    if live is None:
        raise PatchError(code=404, reason="NotFound", message="the object to patch does not exist")
    if media == MERGE_PATCH:
        merged: JsonMap = merge_patch(live, _shaped(document, dict))
        return merged
    if media == JSON_PATCH:
        return json_patch(live, _shaped(document, list))
    if media == STRATEGIC_MERGE_PATCH:
        if request.custom or not smp.supports(request.kind):
            raise unsupported(
                media,
                "the body of the request was in an unknown format - accepted media types "
                f"include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}",
            )
        return smp.strategic_merge(live, _shaped(document, dict), kind=request.kind)
    raise unsupported(media, f"the server does not support the patch type {media!r}")


def unsupported(media: str, message: str) -> PatchError:
    """415 UnsupportedMediaType, as the server answers a patch type it cannot apply."""
    return PatchError(code=415, reason="UnsupportedMediaType", message=message or media)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: JsonMap, operations: list[Any]) -> JsonMap:
    """RFC 6902 JSON patch; any operation that cannot be applied is 422 Invalid."""
    try:
        result = jsonpatch.JsonPatch(operations).apply(target)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise invalid(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise invalid(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    except (KeyError, IndexError, TypeError) as exc:
        raise bad_request(f"invalid JSON patch: {exc}") from exc
    if not isinstance(result, dict):
        raise invalid("a JSON patch must leave an object at the document root")
    return result


def _json_body(body: bytes, shape: type) -> Any:
    try:
        value = json.loads(body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"error decoding patch: {exc}") from exc
    return _shaped(value, shape)


def _shaped(value: Any, shape: type) -> Any:
    if not isinstance(value, shape):
        expected = "an object" if shape is dict else "a list of operations"
        raise bad_request(f"error decoding patch: the patch must be {expected}")
    return value


def _yaml_body(body: bytes) -> JsonMap:
    """Apply bodies are YAML, of which JSON is a subset."""
    try:
        value = yaml.safe_load(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise bad_request(f"error decoding YAML: {exc}") from exc
    document: JsonMap = _shaped(value, dict)
    return document


def _apply_options(request: PatchRequest) -> apply.ApplyOptions:
    if not request.field_manager:
        raise bad_request("PATCH requests with apply-patch must set fieldManager")
    return apply.ApplyOptions(
        manager=request.field_manager,
        force=request.force,
        kind=request.kind,
        now=request.now,
        crd_list_keys=request.crd_list_keys,
    )
