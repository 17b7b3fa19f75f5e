"""Plug the fidelity modules into a `KubeApiServer`: patch types, Tables and OpenAPI.

The server core (`api`, `handlers`, `routes`) exposes seams: patch handlers by content type,
a Table renderer and an OpenAPI provider. `install` fills them with the pure modules that make
real clients work against the fake — strategic merge (`smp`), JSON patch and server-side apply
(`patch`, `apply`), MicroTime decoding (`microtime`), ``kubectl get`` columns (`tables`) and
``/openapi/v3`` (`openapi`) — and
maps their `PatchError` to the server's `ApiError`. `KubeApiServer` calls it on construction.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from trainguard.testing.kube import apply, microtime, openapi, tables
from trainguard.testing.kube import patch as patches
from trainguard.testing.kube.apierrors import ApiError
from trainguard.testing.kube.apply import schema_list_keys
from trainguard.testing.kube.handlers import TableRenderer
from trainguard.testing.kube.patcherror import PatchError
from trainguard.testing.kube.patching import PatchHandler
from trainguard.testing.kube.patching import PatchRequest as ServerPatchRequest
from trainguard.testing.kube.resources import ResourceType

if TYPE_CHECKING:
    from trainguard.testing.kube.api import KubeApi

JsonMap = dict[str, Any]
CRD_KEY = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")


def install(
    api: KubeApi,
    *,
    set_table_renderer: Callable[[TableRenderer | None], None],
    set_openapi: Callable[[Callable[[str], JsonMap | None] | None], None],
) -> None:
    """Register the patch handlers and MicroTime decoding on `api`, Tables and OpenAPI on the
    server."""
    api.admissions.append(microtime.admit)
    api.record_update = record_managed_fields
    for media in (patches.STRATEGIC_MERGE_PATCH, patches.JSON_PATCH):
        api.patch_handlers.register(media, _handler(media))
    api.patch_handlers.register(patches.APPLY_PATCH, _handler(patches.APPLY_PATCH), creates=True)
    set_table_renderer(render_table)
    set_openapi(lambda path: openapi_document(api, path))


def _handler(media: str) -> PatchHandler:
    def handle(stored: JsonMap | None, document: Any, request: ServerPatchRequest) -> JsonMap:
        resource = request.resource
        if media == patches.APPLY_PATCH and request.subresource:
            raise ApiError(
                400,
                "BadRequest",
                "the fake implements server-side apply of objects only, "
                f"not of the {request.subresource} subresource",
            )
        ours = patches.PatchRequest(
            content_type=media,
            kind=resource.kind,
            custom=resource.custom,
            field_manager=request.field_manager,
            force=request.force,
            crd_list_keys=schema_list_keys(resource.schema) if resource.custom else None,
        )
        try:
            return patches.apply_document(stored, document, ours)
        except PatchError as exc:
            raise as_api_error(exc) from exc

    return handle


def record_managed_fields(
    resource: ResourceType, stored: JsonMap | None, new: JsonMap, manager: str
) -> JsonMap:
    """``managedFields`` after a non-apply write by ``manager`` (the server's `UpdateRecorder`).

    A body without ``managedFields`` keeps the stored entries, and a write that changes nothing
    else leaves them as they were (no new timestamp, so the write stays a no-op), as on the
    real server.
    """
    new = copy.deepcopy(new)
    metadata = new.setdefault("metadata", {})
    before = (stored or {}).get("metadata", {}).get("managedFields")
    if "managedFields" not in metadata and before:
        metadata["managedFields"] = copy.deepcopy(before)
    if stored is not None and _without_managed_fields(new) == _without_managed_fields(stored):
        return new
    keys = schema_list_keys(resource.schema) if resource.custom else None
    return apply.record_update(stored, new, manager=manager, kind=resource.kind, crd_list_keys=keys)


def _without_managed_fields(obj: JsonMap) -> JsonMap:
    metadata = {k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"}
    return {**obj, "metadata": metadata}


def as_api_error(error: PatchError) -> ApiError:
    """The server's error for a `PatchError` (same code, reason, message and causes)."""
    details: JsonMap = {"causes": error.causes} if error.causes else {}
    return ApiError(error.code, error.reason, error.message, details)


def render_table(resource: ResourceType, objects: list[JsonMap], include: str | None) -> JsonMap:
    """The Table for `objects` of `resource` (the server's `TableRenderer`).

    A view is printed from its stored form, as the real server prints the internal type
    (``kubectl get events.v1.events.k8s.io`` shows the core/v1 columns).
    """
    if resource.view is not None:
        objects = [resource.view.to_storage(obj) for obj in objects]
    try:
        chosen = tables.include_object(include)
    except ValueError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from exc
    crd = None
    if resource.custom:
        columns = list(resource.printer_columns) or None
        crd = {
            "spec": {"versions": [{"name": resource.version, "additionalPrinterColumns": columns}]}
        }
    return tables.table(objects, kind=resource.kind, now=datetime.now(UTC), include=chosen, crd=crd)


def openapi_document(api: KubeApi, path: str) -> JsonMap | None:
    """``/openapi/v3[/...]`` for the built-in kinds and every stored CRD; None for v2 (404)."""
    if not path.startswith("/openapi/v3"):
        return None
    crds, _ = api.store.list(CRD_KEY)
    kinds = [*openapi.BUILTIN_KINDS, *(k for crd in crds for k in openapi.kinds_of_crd(crd))]
    return openapi.document(path, kinds)
