"""The garbage collector: ownerReferences honoured after every change, inline.

Kubernetes' collector watches everything and deletes a dependent once none of its owners
exists any more, and finishes foreground deletions (owner marked with the ``foregroundDeletion``
finalizer) once the owner's dependents are gone. Here it is an ``after_write`` hook of
`KubeApi`, so a delete returns with its cascade already applied (the real one lags a little;
clients must not rely on either timing).
"""

from __future__ import annotations

from typing import Any

from trainguard.testing.kube.api import KubeApi
from trainguard.testing.kube.apierrors import ApiError
from trainguard.testing.kube.deletion import FOREGROUND, DeleteOptions, delete
from trainguard.testing.kube.resources import ResourceType


class GarbageCollector:
    """Deletes orphaned dependents and completes foreground deletions; install with `attach`."""

    def __init__(self, api: KubeApi) -> None:
        self._api = api

    def attach(self) -> None:
        self._api.after_write.append(self.on_change)

    def on_change(self, rtype: ResourceType, change: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if change == "DELETED":
            self.collect_dependents_of(meta["uid"])
            self.finish_foreground_owners(meta.get("ownerReferences", []))
        elif FOREGROUND in meta.get("finalizers", []) and "deletionTimestamp" in meta:
            self.delete_for_foreground(rtype, obj)

    def _everything(self) -> list[tuple[ResourceType, dict[str, Any]]]:
        found: list[tuple[ResourceType, dict[str, Any]]] = []
        for rtype in self._api.registry.all():
            items, _ = self._api.store.list(rtype.key())
            found.extend((rtype, item) for item in items)
        return found

    def _existing_uids(self) -> set[str]:
        return {item["metadata"]["uid"] for _, item in self._everything()}

    def _dependents(self, owner_uid: str) -> list[tuple[ResourceType, dict[str, Any]]]:
        return [
            (rtype, item)
            for rtype, item in self._everything()
            if any(
                ref.get("uid") == owner_uid for ref in item["metadata"].get("ownerReferences", [])
            )
        ]

    def _delete_quietly(self, rtype: ResourceType, obj: dict[str, Any], policy: str) -> None:
        meta = obj["metadata"]
        if "deletionTimestamp" in meta:
            return
        try:
            delete(
                self._api,
                rtype,
                meta.get("namespace", ""),
                meta["name"],
                DeleteOptions(propagation_policy=policy),
            )
        except ApiError as error:
            if error.code != 404:  # deleted meanwhile by someone else: nothing to collect
                raise

    def collect_dependents_of(self, owner_uid: str) -> None:
        """Delete (Background) each dependent of a removed owner whose owners are all gone."""
        existing = self._existing_uids()
        for rtype, item in self._dependents(owner_uid):
            refs = item["metadata"].get("ownerReferences", [])
            if not any(ref.get("uid") in existing for ref in refs):
                self._delete_quietly(rtype, item, "Background")

    def delete_for_foreground(self, rtype: ResourceType, owner: dict[str, Any]) -> None:
        """Delete an owner's dependents; its ``foregroundDeletion`` finalizer goes with the last."""
        for dep_type, dependent in self._dependents(owner["metadata"]["uid"]):
            self._delete_quietly(dep_type, dependent, "Foreground")
        self._release_if_done(
            rtype, owner["metadata"].get("namespace", ""), owner["metadata"]["name"]
        )

    def finish_foreground_owners(self, refs: list[dict[str, Any]]) -> None:
        """After a dependent went away, release owners waiting on it in foreground deletion."""
        for ref in refs:
            rtype = self._api.registry.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
            if rtype is None:
                continue
            for item in self._api.store.list(rtype.key())[0]:
                if item["metadata"]["uid"] == ref.get("uid"):
                    meta = item["metadata"]
                    self._release_if_done(rtype, meta.get("namespace", ""), meta["name"])

    def _release_if_done(self, rtype: ResourceType, namespace: str, name: str) -> None:
        owner = self._api.store.find(rtype.key(), namespace, name)
        if owner is None or FOREGROUND not in owner["metadata"].get("finalizers", []):
            return
        if self._dependents(owner["metadata"]["uid"]):
            return
        owner["metadata"]["finalizers"].remove(FOREGROUND)
        if not owner["metadata"]["finalizers"]:
            del owner["metadata"]["finalizers"]
        self._api.write_internal(rtype, owner)
