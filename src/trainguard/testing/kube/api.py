"""The API server's verbs over storage, without HTTP: create, get, list, update, patch.

Handlers parse requests and call `KubeApi`; `KubeApi` applies the write rules (`writes`),
admission checks registered per resource (CR schema validation, CRD registration) and
storage. Keeping this layer free of HTTP lets unit tests drive the semantics directly and
lets the in-process test helpers write objects exactly as a client would.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trainguard.testing.kube.apierrors import ApiError, bad_request, conflict, gone, not_found
from trainguard.testing.kube.fieldvalidation import FieldValidation
from trainguard.testing.kube.objects import ObjectStore
from trainguard.testing.kube.patching import (
    APPLY_PATCH,
    PatchHandler,
    PatchHandlers,
    PatchRequest,
)
from trainguard.testing.kube.resources import ResourceRegistry, ResourceType
from trainguard.testing.kube.selectors import Matcher
from trainguard.testing.kube.writes import prepare_create, prepare_update

Admission = Callable[[ResourceType, dict[str, Any], dict[str, Any] | None], dict[str, Any]]
"""``(resource, new object, stored object or None) -> object to store``; raises `ApiError`."""
AfterWrite = Callable[[ResourceType, str, dict[str, Any]], None]
"""``(resource, "ADDED"|"MODIFIED"|"DELETED", object)``, called after storage changed."""
UpdateRecorder = Callable[
    [ResourceType, dict[str, Any] | None, dict[str, Any], str], dict[str, Any]
]
"""``(resource, stored object or None, new object, field manager) -> new object`` with
``metadata.managedFields`` updated for a non-apply write (operation ``Update``)."""

GUARANTEED_UPDATE_TRIES = 5
"""Tries of a write without a client resourceVersion when another write lands between its read
and its store (the real server's GuaranteedUpdate retries such a write instead of a 409)."""
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class KubeApi:
    """Registry + storage + the rules that join them; one per fake API server."""

    registry: ResourceRegistry = field(default_factory=ResourceRegistry.with_builtins)
    store: ObjectStore = field(default_factory=ObjectStore)
    patch_handlers: PatchHandlers = field(default_factory=PatchHandlers.default)
    admissions: list[Admission] = field(default_factory=list)
    after_write: list[AfterWrite] = field(default_factory=list)
    record_update: UpdateRecorder | None = None
    """Set by `fidelity.install`; None records no managed fields for non-apply writes."""

    def ensure_default_namespaces(self) -> None:
        namespaces = self.registry.get("", "v1", "namespaces")
        for name in DEFAULT_NAMESPACES:
            if self.store.find(namespaces.key(), "", name) is None:
                self.create(namespaces, "", {"metadata": {"name": name}})

    def _check_namespace(self, rtype: ResourceType, namespace: str) -> None:
        if rtype.namespaced and self.store.find(("", "v1", "namespaces"), "", namespace) is None:
            raise not_found("", "namespaces", namespace)

    def _admit(
        self, rtype: ResourceType, obj: dict[str, Any], stored: dict[str, Any] | None
    ) -> dict[str, Any]:
        for admission in self.admissions:
            obj = admission(rtype, obj, stored)
        return obj

    def _managed(
        self,
        rtype: ResourceType,
        stored: dict[str, Any] | None,
        new: dict[str, Any],
        manager: str | None,
    ) -> dict[str, Any]:
        if self.record_update is None or manager is None:
            return new
        return self.record_update(rtype, stored, new, manager)

    def storage_type(self, rtype: ResourceType) -> ResourceType:
        """The resource whose storage holds ``rtype``'s objects (itself unless it is a view)."""
        return self.registry.get(*rtype.view.storage) if rtype.view else rtype

    def _notify(self, rtype: ResourceType, change: str, obj: dict[str, Any]) -> None:
        for hook in self.after_write:
            hook(rtype, change, obj)

    def create(
        self,
        rtype: ResourceType,
        namespace: str,
        body: dict[str, Any],
        *,
        dry_run: bool = False,
        validation: FieldValidation | None = None,
        manager: str | None = None,
    ) -> dict[str, Any]:
        """POST: store a new object (or only check it, with ``dry_run``).

        ``validation`` (a request's ``fieldValidation``) decodes the body as the server does;
        None, for the server's own writes, keeps every field. ``manager`` (the request's field
        manager) is recorded in ``managedFields`` as owning every field set.
        """
        if validation is not None:
            body = validation.decode(rtype, body)
        if rtype.view:
            stored = rtype.view.to_storage(body)
            created = self.create(
                self.storage_type(rtype), namespace, stored, dry_run=dry_run, manager=manager
            )
            return rtype.view.from_storage(created)
        namespace = namespace if rtype.namespaced else ""
        self._check_namespace(rtype, namespace)
        obj = self._admit(rtype, prepare_create(rtype, body, namespace), None)
        obj = self._managed(rtype, None, obj, manager)
        if dry_run:
            return obj
        created = self.store.create(rtype.key(), obj)
        self._notify(rtype, "ADDED", created)
        return created

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rtype.storage_key(), namespace if rtype.namespaced else "", name)
        return rtype.view.from_storage(obj) if rtype.view else obj

    def update(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: dict[str, Any],
        *,
        subresource: str = "",
        dry_run: bool = False,
        validation: FieldValidation | None = None,
        manager: str | None = None,
    ) -> dict[str, Any]:
        """PUT: replace an object; a stale ``metadata.resourceVersion`` in ``body`` is a 409.

        ``manager`` takes ownership (``Update``) of the fields this write changes.
        """
        if validation is not None:
            body = validation.decode(rtype, body)
        if rtype.view:
            updated = self.update(
                self.storage_type(rtype),
                namespace,
                name,
                rtype.view.to_storage(body),
                subresource=subresource,
                dry_run=dry_run,
                manager=manager,
            )
            return rtype.view.from_storage(updated)
        expected = (body.get("metadata") or {}).get("resourceVersion") or None
        for attempt in range(GUARANTEED_UPDATE_TRIES):
            stored = self.get(rtype, namespace, name)
            if expected is not None and expected != stored["metadata"]["resourceVersion"]:
                raise conflict(rtype.group, rtype.resource, name)
            new = self._admit(
                rtype, prepare_update(rtype, body, stored, subresource=subresource), stored
            )
            if not subresource:
                new = self._managed(rtype, stored, new, manager)
            try:
                return self._store_update(rtype, new, stored, dry_run=dry_run)
            except ApiError as exc:  # a write in between: retried unless preconditioned
                if not _retryable(exc, expected, attempt):
                    raise
        raise AssertionError("unreachable: the last try returns or raises")

    def write_internal(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """A write by the server itself (deletion marks, garbage collection): no body rules."""
        if rtype.view:
            written = self.write_internal(self.storage_type(rtype), rtype.view.to_storage(obj))
            return rtype.view.from_storage(written)
        meta = obj["metadata"]
        stored = self.get(rtype, meta.get("namespace", ""), meta["name"])
        return self._store_update(rtype, obj, stored, dry_run=False)

    def _store_update(
        self, rtype: ResourceType, new: dict[str, Any], stored: dict[str, Any], *, dry_run: bool
    ) -> dict[str, Any]:
        if dry_run:
            return new
        version = stored["metadata"]["resourceVersion"]
        if new == stored:
            return stored  # a no-op write keeps the resourceVersion, as the real server does
        if _finished_deleting(new):
            removed = self.store.remove(
                rtype.key(), new["metadata"].get("namespace", ""), new["metadata"]["name"]
            )
            self._notify(rtype, "DELETED", removed)
            return removed
        updated = self.store.update(rtype.key(), new, expected_version=version)
        self._notify(rtype, "MODIFIED", updated)
        return updated

    def patch(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        *,
        content_type: str,
        document: Any,
        request: PatchRequest,
        dry_run: bool = False,
        validation: FieldValidation | None = None,
        manager: str | None = None,
        handler: PatchHandler | None = None,
    ) -> dict[str, Any]:
        """PATCH: the handler for ``content_type`` computes the new object, then PUT rules apply.

        A view's patch applies to the object as the view shows it (an events.k8s.io/v1 patch
        names ``note``, not ``message``) and is converted back to the stored form. The patched
        object is decoded with ``validation``, as the server decodes it. A patch other than
        server-side apply (which records ``Apply`` itself) gives ``manager`` the fields it changed.
        """
        handler = handler or self._patch_handler(content_type, rtype, validation)
        if rtype.view:
            patched = self.patch(
                self.storage_type(rtype),
                namespace,
                name,
                content_type=content_type,
                document=document,
                request=request,
                dry_run=dry_run,
                manager=manager,
                handler=handler,
            )
            return rtype.view.from_storage(patched)
        for attempt in range(GUARANTEED_UPDATE_TRIES):
            stored = self.store.find(rtype.key(), namespace if rtype.namespaced else "", name)
            if stored is None:
                if content_type.split(";", maxsplit=1)[0] not in self.patch_handlers.creating:
                    raise not_found(rtype.group, rtype.resource, name)
                created = handler(None, document, request)
                created.setdefault("metadata", {})["name"] = name
                return self.create(rtype, namespace, created, dry_run=dry_run)
            patched = handler(stored, document, request)
            expected = patched.setdefault("metadata", {}).get("resourceVersion")
            if expected is not None and expected != stored["metadata"]["resourceVersion"]:
                raise conflict(rtype.group, rtype.resource, name)
            new = prepare_update(rtype, patched, stored, subresource=request.subresource)
            new = self._admit(rtype, new, stored)
            if not request.subresource and content_type.split(";", 1)[0].strip() != APPLY_PATCH:
                new = self._managed(rtype, stored, new, manager)
            try:
                return self._store_update(rtype, new, stored, dry_run=dry_run)
            except ApiError as exc:
                # Another write landed between the read and this one. With no precondition of
                # the client's, the real server applies the patch again to the new object
                # (GuaranteedUpdate); only a patch that names a resourceVersion gets the 409.
                if not _retryable(exc, _named_version(document), attempt):
                    raise
        raise AssertionError("unreachable: the last try returns or raises")

    def _patch_handler(
        self, content_type: str, rtype: ResourceType, validation: FieldValidation | None
    ) -> PatchHandler:
        """The handler for ``content_type``, seeing objects as ``rtype`` shows them and
        decoding its result with ``validation``; 415 when there is none."""
        found = self.patch_handlers.find(content_type)
        if found is None:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the server does not support patch type {content_type!r}",
            )
        view = rtype.view
        handler = found
        applying = content_type.split(";", 1)[0].strip() == APPLY_PATCH

        def decoded(
            stored: dict[str, Any] | None, document: Any, request: PatchRequest
        ) -> dict[str, Any]:
            shown = stored if view is None or stored is None else view.from_storage(stored)
            if validation is not None and applying and isinstance(document, dict):
                validation.check_apply(rtype, document)
            patched = handler(shown, document, request)
            if validation is not None:
                patched = validation.decode(rtype, patched)
            return view.to_storage(patched) if view else patched

        return decoded

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None,
        matcher: Matcher,
        *,
        limit: int = 0,
        continue_token: str = "",
    ) -> dict[str, Any]:
        """A ``<Kind>List`` of the matching objects, paginated by ``limit``/``continue``.

        ``matcher`` sees objects in their stored form (selectors of a view are translated).
        """
        key = rtype.storage_key()
        items, revision = self.store.list(key, namespace if rtype.namespaced else None)
        items = [item for item in items if matcher(item)]
        start_after, list_revision = _decode_continue(
            continue_token, self.store.oldest_resumable(key)
        )
        if start_after is not None:
            items = [i for i in items if _sort_key(i) > start_after]
            revision = list_revision or revision
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        if limit and len(items) > limit:
            items = items[:limit]
            metadata["continue"] = _encode_continue(_sort_key(items[-1]), revision)
        if rtype.view:
            items = [rtype.view.from_storage(item) for item in items]
        return {
            "kind": rtype.list_kind,
            "apiVersion": rtype.api_version,
            "metadata": metadata,
            "items": items,
        }


def _finished_deleting(obj: dict[str, Any]) -> bool:
    """True once an object being deleted has no finalizers and no grace period left to wait."""
    meta = obj["metadata"]
    return (
        "deletionTimestamp" in meta
        and not meta.get("finalizers")
        and not meta.get("deletionGracePeriodSeconds")
    )


def _sort_key(obj: dict[str, Any]) -> list[str]:
    meta = obj["metadata"]
    return [meta.get("namespace", ""), meta["name"]]


def _encode_continue(after: list[str], revision: int) -> str:
    raw = json.dumps({"after": after, "rv": revision}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str, oldest: int) -> tuple[list[str] | None, int]:
    if not token:
        return None, 0
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        after, revision = list(decoded["after"]), int(decoded["rv"])
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request(f"invalid continue token: {exc}") from exc
    if revision < oldest:
        raise gone(
            "The provided continue parameter is too old to display a consistent list result. "
            "You can start a new list without the continue parameter."
        )
    return after, revision


def _retryable(exc: ApiError, expected: str | None, attempt: int) -> bool:
    """Whether a write's conflict with a write in between is tried again (`update`, `patch`)."""
    return exc.code == 409 and expected is None and attempt + 1 < GUARANTEED_UPDATE_TRIES


def _named_version(document: Any) -> str | None:
    """The resourceVersion a patch document names (its precondition), if any: a merge or
    strategic patch's ``metadata.resourceVersion``, a JSON patch's op on that path."""
    if isinstance(document, dict):
        meta = document.get("metadata")
        named = meta.get("resourceVersion") if isinstance(meta, dict) else None
        return str(named) if named else None
    if isinstance(document, list):
        for op in document:
            if isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion":
                return str(op.get("value"))
    return None
