"""Request handlers for resource URLs: one function per verb, shared by every resource.

Each handler reads the query and body, calls `KubeApi` (or deletion, watch, logs) and shapes
the answer: the object, a ``<Kind>List``, a ``Table`` when the client asks for one and a
renderer is plugged in, a watch stream, or a ``Status``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from trainguard.testing.kube.api import KubeApi
from trainguard.testing.kube.apierrors import (
    ApiError,
    bad_request,
    conflict,
    unsupported_media_type,
)
from trainguard.testing.kube.deletion import DeleteOptions, delete
from trainguard.testing.kube.fieldvalidation import FieldValidation
from trainguard.testing.kube.logs import LogSources
from trainguard.testing.kube.patching import APPLY_PATCH, PatchRequest
from trainguard.testing.kube.paths import Target
from trainguard.testing.kube.resources import ResourceType
from trainguard.testing.kube.selectors import selector_matcher
from trainguard.testing.kube.watch import DEFAULT_TIMEOUT_SECONDS, WatchRequest, stream_watch

TableRenderer = Callable[[ResourceType, list[dict[str, Any]], str | None], dict[str, Any]]
"""``render_table(resource, objects, includeObject) -> meta.k8s.io/v1 Table`` (kubectl's
server-side printing; ``includeObject`` is the query parameter, None when absent)."""


@dataclass
class HandlerContext:
    """What handlers share: the API, pluggable renderers, log sources and shutdown state."""

    api: KubeApi
    logs: LogSources = field(default_factory=LogSources)
    render_table: TableRenderer | None = None
    bookmark_interval: float = 5.0
    stopping: bool = False


def _json(
    obj: dict[str, Any], status: int = 200, validation: FieldValidation | None = None
) -> JSONResponse:
    response = JSONResponse(obj, status_code=status)
    for warning in validation.warning_headers() if validation else ():
        response.headers.append("Warning", warning)
    return response


def _field_manager(request: Request) -> str:
    """``fieldManager``, else the User-Agent up to its first ``/`` (as the real server names
    the manager of a write that does not say)."""
    named = request.query_params.get("fieldManager")
    if named:
        return named
    return request.headers.get("user-agent", "").split("/", 1)[0][:128]


def _validation(request: Request) -> FieldValidation:
    return FieldValidation.parse(request.query_params.get("fieldValidation"))


async def read_body(request: Request) -> Any:
    """The request body as JSON (or YAML for server-side apply); 400 when it does not parse."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "application/json")
    if "protobuf" in content_type or "cbor" in content_type:
        raise unsupported_media_type(content_type)
    try:
        if content_type.startswith(APPLY_PATCH):
            return yaml.safe_load(raw)
        return json.loads(raw or b"{}")
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"the request body does not parse: {exc}") from exc


def _dry_run(request: Request) -> bool:
    values = request.query_params.getlist("dryRun")
    for value in values:
        if value != "All":
            raise bad_request(f'dryRun: Unsupported value: {value!r}: supported values: "All"')
    return bool(values)


def _wants_table(request: Request) -> bool:
    return "as=Table" in request.headers.get("accept", "")


async def handle_get(request: Request, target: Target, ctx: HandlerContext) -> Response:
    if target.subresource == "log":
        return _logs(request, target, ctx)
    obj = ctx.api.get(target.resource, target.namespace or "", target.name)
    if _wants_table(request) and ctx.render_table is not None:
        include = request.query_params.get("includeObject")
        return _json(ctx.render_table(target.resource, [obj], include))
    return _json(obj)


async def handle_list(request: Request, target: Target, ctx: HandlerContext) -> Response:
    query = request.query_params
    matcher = selector_matcher(
        query.get("labelSelector"),
        query.get("fieldSelector"),
        target.resource.resource,
        api_version=target.resource.api_version,
    )
    if query.get("watch") in ("1", "true", "True"):
        return _watch(request, target, ctx, matcher)
    _check_list_version(
        ctx.api, query.get("resourceVersion", ""), query.get("resourceVersionMatch", ""), target
    )
    document = ctx.api.list(
        target.resource,
        target.namespace,
        matcher,
        limit=int(query.get("limit") or 0),
        continue_token=query.get("continue", ""),
    )
    if _wants_table(request) and ctx.render_table is not None:
        include = query.get("includeObject")
        table = ctx.render_table(target.resource, document["items"], include)
        table.setdefault("metadata", {}).update(document["metadata"])
        return _json(table)
    return _json(document)


def _check_list_version(api: KubeApi, version: str, match: str, target: Target) -> None:
    """410 for an ``Exact`` list at a compacted version; 504-style refusal for a future one."""
    if version in ("", "0"):
        return
    try:
        wanted = int(version)
    except ValueError as exc:
        raise bad_request(f"invalid resourceVersion {version!r}") from exc
    if wanted > api.store.revision:
        raise ApiError(
            504, "Timeout", f"Too large resource version: {wanted}, current: {api.store.revision}"
        )
    if match == "Exact" and wanted < api.store.oldest_resumable(target.resource.storage_key()):
        raise ApiError(410, "Expired", f"too old resource version: {wanted}")


def _watch(request: Request, target: Target, ctx: HandlerContext, matcher: Any) -> Response:
    query = request.query_params
    watch = WatchRequest(
        resource=target.resource,
        namespace=target.namespace,
        matcher=_name_matcher(matcher, target.name),
        resource_version=query.get("resourceVersion", ""),
        bookmarks=query.get("allowWatchBookmarks") in ("1", "true", "True"),
        timeout_seconds=float(query.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS),
        bookmark_interval=ctx.bookmark_interval,
        transform=_table_rows(request, target, ctx),
        send_initial_events=query.get("sendInitialEvents") in ("1", "true", "True"),
    )
    stream = stream_watch(ctx.api.store, watch, lambda: ctx.stopping)
    return StreamingResponse(stream, media_type="application/json")


def _table_rows(
    request: Request, target: Target, ctx: HandlerContext
) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """For a watch that asks for Tables (``kubectl get -w``): each object as a one-row Table."""
    renderer = ctx.render_table
    if not _wants_table(request) or renderer is None:
        return None
    include = request.query_params.get("includeObject")
    renderer(target.resource, [], include)  # a bad includeObject fails before the stream starts

    def one_row(obj: dict[str, Any]) -> dict[str, Any]:
        table = renderer(target.resource, [obj], include)
        version = obj.get("metadata", {}).get("resourceVersion", "")
        table.setdefault("metadata", {})["resourceVersion"] = version
        return table

    return one_row


def _name_matcher(matcher: Any, name: str) -> Any:
    if not name:
        return matcher
    return lambda obj: obj["metadata"]["name"] == name and matcher(obj)


async def handle_create(request: Request, target: Target, ctx: HandlerContext) -> Response:
    body = await read_body(request)
    if target.subresource == "binding":
        return _bind(target, body, ctx)
    if target.name or target.subresource:
        raise ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    if target.resource.namespaced and target.namespace is None:
        raise bad_request(
            "a namespaced resource is created in a namespace: POST .../namespaces/<ns>/<resource>"
        )
    validation = _validation(request)
    created = ctx.api.create(
        target.resource,
        target.namespace or "",
        body,
        dry_run=_dry_run(request),
        validation=validation,
        manager=_field_manager(request),
    )
    return _json(created, 201, validation)


async def handle_update(request: Request, target: Target, ctx: HandlerContext) -> Response:
    body = await read_body(request)
    if not isinstance(body, dict):
        raise bad_request("the body of an update must be a JSON object")
    updated = ctx.api.update(
        target.resource,
        target.namespace or "",
        target.name,
        body,
        subresource=target.subresource,
        dry_run=_dry_run(request),
        validation=(validation := _validation(request)),
        manager=_field_manager(request),
    )
    return _json(updated, validation=validation)


async def handle_patch(request: Request, target: Target, ctx: HandlerContext) -> Response:
    document = await read_body(request)
    patch_request = PatchRequest(
        resource=target.resource,
        subresource=target.subresource,
        field_manager=request.query_params.get("fieldManager"),
        force=request.query_params.get("force") in ("true", "1"),
    )
    key = target.resource.storage_key()
    existed = ctx.api.store.find(key, target.namespace or "", target.name) is not None
    patched = ctx.api.patch(
        target.resource,
        target.namespace or "",
        target.name,
        content_type=request.headers.get("content-type", ""),
        document=document,
        request=patch_request,
        dry_run=_dry_run(request),
        validation=(validation := _validation(request)),
        manager=_field_manager(request),
    )
    return _json(patched, 200 if existed else 201, validation)  # 201: server-side apply created


async def handle_delete(request: Request, target: Target, ctx: HandlerContext) -> Response:
    body = await read_body(request) if await request.body() else {}
    query = dict(request.query_params.items())
    options = DeleteOptions.parse(body if isinstance(body, dict) else {}, query)
    if not target.name:
        return _delete_collection(request, target, ctx, options)
    obj, removed = delete(ctx.api, target.resource, target.namespace or "", target.name, options)
    if removed and not target.resource.custom:
        return _json(_success(target.resource, obj))
    return _json(obj)


def _delete_collection(
    request: Request, target: Target, ctx: HandlerContext, options: DeleteOptions
) -> Response:
    query = request.query_params
    matcher = selector_matcher(
        query.get("labelSelector"),
        query.get("fieldSelector"),
        target.resource.resource,
        api_version=target.resource.api_version,
    )
    document = ctx.api.list(target.resource, target.namespace, matcher)
    for item in document["items"]:
        meta = item["metadata"]
        try:
            delete(ctx.api, target.resource, meta.get("namespace", ""), meta["name"], options)
        except ApiError as error:
            if error.code != 404:
                raise
    return _json({**document, "items": []})


def _success(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    details = {
        "name": obj["metadata"]["name"],
        "kind": rtype.resource,
        "uid": obj["metadata"]["uid"],
    }
    if rtype.group:
        details["group"] = rtype.group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def _bind(target: Target, body: Any, ctx: HandlerContext) -> Response:
    """``pods/binding``: set ``spec.nodeName`` once; 409 when the pod is already bound."""
    node = (body.get("target") or {}).get("name") if isinstance(body, dict) else None
    if not node:
        raise ApiError(
            422,
            "Invalid",
            "Binding is invalid: target.name: Required value",
            {
                "causes": [
                    {
                        "field": "target.name",
                        "reason": "FieldValueRequired",
                        "message": "Required value",
                    }
                ]
            },
        )
    pod = ctx.api.get(target.resource, target.namespace or "", target.name)
    bound = pod.get("spec", {}).get("nodeName")
    if bound:
        raise conflict(
            "", "pods", target.name, f'pod {target.name} is already assigned to node "{bound}"'
        )
    pod["spec"]["nodeName"] = node
    status = pod.setdefault("status", {})
    conditions = [c for c in status.get("conditions", []) if c.get("type") != "PodScheduled"]
    status["conditions"] = [
        *conditions,
        {
            "type": "PodScheduled",
            "status": "True",
            "lastTransitionTime": pod["metadata"]["creationTimestamp"],
        },
    ]
    ctx.api.write_internal(target.resource, pod)
    return _json(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
        201,
    )


def _logs(request: Request, target: Target, ctx: HandlerContext) -> Response:
    ctx.api.get(target.resource, target.namespace or "", target.name)  # 404 naming the pod
    query = request.query_params
    tail = query.get("tailLines")
    chunks = ctx.logs.open(
        target.namespace or "",
        target.name,
        query.get("container"),
        int(tail) if tail else None,
        query.get("follow") in ("true", "1"),
    )
    return StreamingResponse(chunks, media_type="text/plain")
