"""DELETE as the API server does it: preconditions, finalizers, graceful pod deletion, GC.

An object with finalizers is only marked (``deletionTimestamp``) until the last finalizer is
removed; a pod bound to a node is marked with a grace period and removed when its kubelet
deletes it again with ``gracePeriodSeconds=0`` (unbound pods go at once); a second delete may
only shorten the grace period, as the API server's ``BeforeDelete`` allows. Owner references are
honoured by a garbage collector that runs synchronously after every removal: ``Background``
(the default) deletes dependents whose owners are all gone, ``Orphan`` strips the owner
reference from dependents, ``Foreground`` keeps the owner (finalizer ``foregroundDeletion``)
until its blocking dependents are gone. The real collector is asynchronous; running it inline
keeps tests deterministic and is a documented difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trainguard.testing.kube.api import KubeApi
from trainguard.testing.kube.apierrors import ApiError, bad_request
from trainguard.testing.kube.objects import now_rfc3339
from trainguard.testing.kube.resources import ResourceType

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
DEFAULT_POD_GRACE = 30
STAMP = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class DeleteOptions:
    """The parts of ``metav1.DeleteOptions`` the fake honours."""

    grace_period_seconds: int | None = None
    propagation_policy: str = "Background"
    precondition_uid: str | None = None
    precondition_version: str | None = None
    dry_run: bool = False

    @classmethod
    def parse(cls, body: dict[str, Any], query: dict[str, str]) -> DeleteOptions:
        """From the request body (``DeleteOptions`` JSON) and query, the body winning."""
        merged: dict[str, Any] = {**query, **{k: v for k, v in body.items() if v is not None}}
        policy = merged.get("propagationPolicy") or (
            "Orphan" if merged.get("orphanDependents") in (True, "true") else "Background"
        )
        if policy not in ("Background", "Foreground", "Orphan"):
            raise bad_request(f"propagationPolicy: Unsupported value: {policy!r}")
        grace = merged.get("gracePeriodSeconds")
        preconditions = merged.get("preconditions") or {}
        dry_run = merged.get("dryRun")
        return cls(
            grace_period_seconds=None if grace in (None, "") else int(grace),
            propagation_policy=policy,
            precondition_uid=preconditions.get("uid"),
            precondition_version=preconditions.get("resourceVersion"),
            dry_run=bool(dry_run) and dry_run != [],
        )


def _check_preconditions(rtype: ResourceType, obj: dict[str, Any], options: DeleteOptions) -> None:
    meta = obj["metadata"]
    for label, wanted, actual in (
        ("UID", options.precondition_uid, meta["uid"]),
        ("ResourceVersion", options.precondition_version, meta["resourceVersion"]),
    ):
        if wanted and wanted != actual:
            message = (
                f"Precondition failed: {label} in precondition: {wanted}, "
                f"{label} in object meta: {actual}"
            )
            raise ApiError(409, "Conflict", message, {"name": meta["name"], "kind": rtype.resource})


def _grace_period(rtype: ResourceType, obj: dict[str, Any], options: DeleteOptions) -> int:
    """Seconds of graceful deletion: only pods bound to a node get any."""
    if (rtype.group, rtype.resource) != ("", "pods") or not obj.get("spec", {}).get("nodeName"):
        return 0
    if options.grace_period_seconds is not None:
        return max(options.grace_period_seconds, 0)
    return int(obj.get("spec", {}).get("terminationGracePeriodSeconds", DEFAULT_POD_GRACE))


def delete(
    api: KubeApi, rtype: ResourceType, namespace: str, name: str, options: DeleteOptions
) -> tuple[dict[str, Any], bool]:
    """Delete (or begin deleting) one object.

    Returns:
        The object as it is now and whether it is gone from storage.
    """
    obj = api.get(rtype, namespace, name)
    _check_preconditions(rtype, obj, options)
    meta = obj["metadata"]
    finalizers = list(meta.get("finalizers", []))
    if options.propagation_policy == "Foreground" and FOREGROUND not in finalizers:
        finalizers.append(FOREGROUND)
    if options.propagation_policy == "Orphan" and not options.dry_run:
        orphan_dependents(api, meta["uid"])
    grace = _grace_period(rtype, obj, options)
    if "deletionTimestamp" not in meta:
        meta["deletionTimestamp"] = _after(grace)
        meta["deletionGracePeriodSeconds"] = grace
    elif grace == 0 or options.grace_period_seconds == 0:
        meta["deletionGracePeriodSeconds"] = 0
    elif options.grace_period_seconds is not None:
        _shorten(meta, grace)
    meta["finalizers"] = finalizers
    if not finalizers:
        meta.pop("finalizers")
    if options.dry_run:
        return obj, False
    updated = api.write_internal(rtype, obj)
    gone = api.store.find(rtype.storage_key(), namespace if rtype.namespaced else "", name) is None
    return updated, gone


def _shorten(meta: dict[str, Any], grace: int) -> None:
    """A later delete may only shorten a graceful deletion, counted from the first request
    (``BeforeDelete`` in the API server): the deadline moves to first request + ``grace``."""
    current = meta.get("deletionGracePeriodSeconds")
    if not current or grace >= current:
        return
    first_asked = _parse(meta["deletionTimestamp"]) - timedelta(seconds=current)
    meta["deletionTimestamp"] = (first_asked + timedelta(seconds=grace)).strftime(STAMP)
    meta["deletionGracePeriodSeconds"] = grace


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, STAMP).replace(tzinfo=UTC)


def _after(seconds: int) -> str:
    if seconds <= 0:
        return now_rfc3339()
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.strftime(STAMP)


def orphan_dependents(api: KubeApi, owner_uid: str) -> None:
    """Remove ``owner_uid`` from every dependent's ownerReferences (propagation ``Orphan``)."""
    for rtype in api.registry.all():
        items, _ = api.store.list(rtype.key())
        for item in items:
            refs = item["metadata"].get("ownerReferences", [])
            kept = [ref for ref in refs if ref.get("uid") != owner_uid]
            if len(kept) != len(refs):
                item["metadata"]["ownerReferences"] = kept
                api.write_internal(rtype, item)
