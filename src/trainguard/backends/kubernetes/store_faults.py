"""Fault requests as ConfigMaps: one per job (``<job>-trainguard-faults``), one key per request.

Why ConfigMaps: ``trainguard fault inject`` (and ``run --fault``) must be able to queue a fault
with nothing more than the RBAC a user already has for their namespace — ``create``/``patch``
on ConfigMaps — and without touching the job's spec (which would bump its generation) or its
status (which only the controller writes). A ConfigMap per job keeps a job's requests together,
is owned by the job (the garbage collector removes it with the job), and is cached by the
store's informer through its label ``trainguard.io/fault-requests=<job>``.

Request ids must be unique across jobs (`Store.get_fault_request` takes only the id): they
come from a counter ConfigMap, ``trainguard-fault-ids`` in the store's namespace, incremented
by compare-and-swap on its resourceVersion. Each request is a JSON value under its id; an
outcome is recorded with a resourceVersion-guarded patch, so a request decided by one writer
is never overwritten by another ("decided stays").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from trainguard.backends.kubernetes.caches import ObjectCache
from trainguard.backends.kubernetes.client import CONFIGMAPS, KubeClient
from trainguard.backends.kubernetes.store_objects import owner_reference
from trainguard.errors import ConflictError, CorruptRecord, NotFoundError
from trainguard.spec.faults import FaultSpec
from trainguard.store.records import FaultOutcome, FaultRequest

LABEL_FAULTS = "trainguard.io/fault-requests"
COUNTER = "trainguard-fault-ids"
_SPEC: TypeAdapter[FaultSpec] = TypeAdapter(FaultSpec)
_TRIES = 8
"""Compare-and-swap attempts before a busy counter or ConfigMap is reported as a conflict."""


def configmap_name(job: str) -> str:
    """The ConfigMap holding ``job``'s fault requests."""
    return f"{job}-trainguard-faults"


class FaultRequests:
    """Fault requests over ConfigMaps (reads from ``cache``, writes through ``client``)."""

    def __init__(self, client: KubeClient, cache: ObjectCache, *, namespace: str) -> None:
        self.client, self.cache, self.namespace = client, cache, namespace

    def add(
        self, namespace: str, job: str, spec: FaultSpec, now: float, owner: dict[str, Any] | None
    ) -> int:
        """Queue a request; returns its id."""
        request_id = self._next_id()
        request = FaultRequest(request_id, namespace, job, spec, now)
        data = {str(request_id): request_json(request)}
        try:
            done = self.client.patch(
                CONFIGMAPS, configmap_name(job), {"data": data}, namespace=namespace
            )
        except NotFoundError:
            done = self._create(namespace, job, data, owner)
        self.cache.remember(done)
        return request_id

    def _create(
        self, namespace: str, job: str, data: dict[str, str], owner: dict[str, Any] | None
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": configmap_name(job), "namespace": namespace, "labels": {LABEL_FAULTS: job},
        }  # fmt: skip
        if owner is not None:
            meta["ownerReferences"] = [owner_reference(owner)]
        return self.client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": meta, "data": data})  # fmt: skip

    def _next_id(self) -> int:
        for _ in range(_TRIES):
            try:
                counter = self.client.get(CONFIGMAPS, COUNTER, namespace=self.namespace)
            except NotFoundError:
                meta = {"name": COUNTER, "namespace": self.namespace, "labels": {LABEL_FAULTS: ""}}
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                        "data": {"next": "2"}}  # fmt: skip
                try:
                    self.client.create(CONFIGMAPS, body)
                except ConflictError:
                    continue
                return 1
            taken = int((counter.get("data") or {}).get("next", "1"))
            counter["data"] = {"next": str(taken + 1)}
            try:
                self.client.replace(CONFIGMAPS, counter)
            except ConflictError:
                continue
            return taken
        raise ConflictError(f"ConfigMap {self.namespace}/{COUNTER}: too busy to take a fault id")

    # --- reads -----------------------------------------------------------------------------

    def all(self) -> list[FaultRequest]:
        """Every request in the cache, by id."""
        found = [
            request_record(text)
            for obj in self.cache.items()
            if obj["metadata"]["name"] != COUNTER
            for text in (obj.get("data") or {}).values()
        ]
        return sorted(found, key=lambda r: r.id)

    def of_job(self, namespace: str, job: str) -> list[FaultRequest]:
        """A job's requests, by id."""
        obj = self.cache.get(namespace, configmap_name(job))
        texts = (obj.get("data") or {}).values() if obj is not None else ()
        return sorted((request_record(t) for t in texts), key=lambda r: r.id)

    def get(self, request_id: int) -> FaultRequest:
        """One request; `NotFoundError` if missing."""
        for request in self.all():
            if request.id == request_id:
                return request
        raise NotFoundError(f"fault request {request_id} not found")

    # --- updates of a pending request ------------------------------------------------------

    def update_pending(
        self, request_id: int, change: Callable[[FaultRequest], FaultRequest]
    ) -> None:
        """Replace pending request ``request_id`` by ``change(request)``; decided ones stay."""
        where = self.get(request_id)
        name = configmap_name(where.job)
        for _ in range(_TRIES):
            obj = self.client.get(CONFIGMAPS, name, namespace=where.namespace)
            request = request_record((obj.get("data") or {})[str(request_id)])
            if request.outcome is not FaultOutcome.PENDING:
                self.cache.remember(obj)
                return
            patch = {
                "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                "data": {str(request_id): request_json(change(request))},
            }
            try:
                done = self.client.patch(CONFIGMAPS, name, patch, namespace=where.namespace)
            except ConflictError:
                continue
            self.cache.remember(done)
            return
        raise ConflictError(f"ConfigMap {where.namespace}/{name}: changed on every attempt")


def request_json(request: FaultRequest) -> str:
    """A request as the JSON stored under its id."""
    return json.dumps(
        {
            "id": request.id, "namespace": request.namespace, "job": request.job,
            "spec": json.loads(_SPEC.dump_json(request.spec)), "createdAt": request.created_at,
            "doneAt": request.done_at, "result": request.result,
            "outcome": request.outcome.value, "trainingAt": request.training_at,
            "reportedStep": request.reported_step,
        },
        separators=(",", ":"),
    )  # fmt: skip


def request_record(text: str) -> FaultRequest:
    """A stored request; `CorruptRecord` names one that does not parse."""
    try:
        data = json.loads(text)
        return FaultRequest(
            int(data["id"]), data["namespace"], data["job"], _SPEC.validate_python(data["spec"]),
            float(data["createdAt"]), data.get("doneAt"), data.get("result"),
            FaultOutcome(data.get("outcome", FaultOutcome.PENDING.value)),
            data.get("trainingAt"), data.get("reportedStep"),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptRecord(f"fault request {text[:80]!r} is invalid: {exc}") from exc
