"""Pods, Nodes and Events of `KubernetesStore` (its cluster-object half, kept apart so each
module holds one idea: the job/commit logic in `store`, the per-object writes here).

Reads come from the store's caches; each write goes to the API server and its answer into the
cache. Which fields live where is `store_objects`' docstring. The job's one spec write,
``runPolicy.suspend`` (`set_suspend`), is such a per-object write too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from trainguard import constants as c
from trainguard.backends.kubernetes import store_objects as objs
from trainguard.backends.kubernetes.caches import ObjectCache
from trainguard.backends.kubernetes.client import EVENTS, JOBS, NODES, PODS, KubeClient
from trainguard.errors import ConflictError, NotFoundError
from trainguard.store.records import EventRecord, NodeRecord, PodRecord


class ClusterObjects:
    """Pods, nodes and events over the caches (a base of `KubernetesStore`)."""

    client: KubeClient
    jobs: ObjectCache
    pods: ObjectCache
    nodes: ObjectCache
    events: ObjectCache
    instance: str

    def _check_fence(self) -> None:
        """Refuse a write once the fenced holder lost the lease (`KubernetesStore`)."""
        raise NotImplementedError

    # --- pods and nodes --------------------------------------------------------------------

    def set_suspend(self, namespace: str, name: str, *, suspend: bool) -> None:
        """Merge-patch the job's ``spec.runPolicy.suspend`` (as ``kubectl patch`` would): the
        one write to a job's spec, so it sits with the per-object writes."""
        patch = {"spec": {"runPolicy": {"suspend": suspend}}}
        with named_errors(f"job {namespace}/{name}"):
            self.jobs.remember(self.client.patch(JOBS, name, patch, namespace=namespace))

    def save_pod(self, pod: PodRecord) -> None:
        """Record ``pod`` on its Pod's labels and annotations; `NotFoundError` if no such Pod
        exists (the backend creates Pods; the store only records what it sees on them)."""
        self._check_fence()
        self._save_pod(pod)

    def _save_pod(self, pod: PodRecord) -> None:
        current = self.pods.get(pod.namespace, pod.name) or {"metadata": {}}
        with named_errors(f"pod {pod.namespace}/{pod.name}"):
            done = self.client.patch(
                PODS, pod.name, objs.pod_patch(pod, current), namespace=pod.namespace
            )
        self.pods.remember(done)

    def list_pods(self, namespace: str | None = None, job: str | None = None) -> list[PodRecord]:
        """Pods, of one job when ``job`` is given, in creation order. A Pod being deleted
        (``deletionTimestamp`` set) is a removed pod: it only waits for its kubelet, and its
        name is never used again."""
        live = [o for o in self.pods.items() if not o["metadata"].get("deletionTimestamp")]
        found = [objs.pod_record(o, self._node_of(o)) for o in live]
        if job is not None:
            found = [p for p in found if (p.namespace, p.job) == (namespace or "default", job)]
        return sorted(found, key=lambda p: (p.created_at, p.name))

    def _node_of(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        name = (pod.get("spec") or {}).get("nodeName")
        return self.nodes.get("", name) if name else None

    def save_node(self, node: NodeRecord) -> None:
        """Create the Node, or replace its labels, annotations and info."""
        self._check_fence()
        current = self.nodes.get("", node.name)
        body = objs.node_object(node, current)
        with named_errors(f"node {node.name}"):
            done = (
                self.client.create(NODES, body)
                if current is None
                else self.client.replace(NODES, body)
            )
        self.nodes.remember(done)

    def find_node(self, name: str) -> NodeRecord | None:
        """The node, or None."""
        obj = self.nodes.get("", name)
        return None if obj is None else objs.node_record(obj)

    def get_node(self, name: str) -> NodeRecord:
        """The node; `NotFoundError` if missing."""
        node = self.find_node(name)
        if node is None:
            raise NotFoundError(f"node {name} not found")
        return node

    def list_nodes(self) -> list[NodeRecord]:
        """All nodes, by name (``node-2`` before ``node-10``)."""
        found = [objs.node_record(o) for o in self.nodes.items()]
        return sorted(found, key=lambda n: (len(n.name), n.name))

    def patch_node(
        self, name: str, *, labels: Mapping[str, str | None] | None = None,
        annotations: Mapping[str, str | None] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> NodeRecord:  # fmt: skip
        """Set (or, with None, delete) labels/annotations/info keys of a node in one patch."""
        self._check_fence()
        return self._patch_node(name, labels or {}, annotations or {}, info or {})

    def _patch_node(
        self, name: str, labels: Mapping[str, str | None],
        annotations: Mapping[str, str | None], info: Mapping[str, Any],
    ) -> NodeRecord:  # fmt: skip
        current = self.nodes.get("", name)
        if current is None:
            raise NotFoundError(f"node {name} not found")
        meta: dict[str, Any] = {"labels": dict(labels), "annotations": dict(annotations)}
        if info:
            merged = {**objs.node_record(current).info, **info}
            kept = {k: v for k, v in merged.items() if v is not None}
            meta["annotations"][c.ANNOTATION_INFO] = objs._dumps(kept) if kept else None
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        with named_errors(f"node {name}"):
            done = self.client.patch(NODES, name, {"metadata": meta})
        self.nodes.remember(done)
        return objs.node_record(done)

    def remove_node(self, name: str) -> None:
        """Delete the Node."""
        self._check_fence()
        self._delete(NODES, self.nodes, "", name)

    # --- events ----------------------------------------------------------------------------

    def add_events(self, events: list[EventRecord]) -> None:
        """Create one Event per record."""
        self._check_fence()
        self._post_events(events)

    def _post_events(self, events: Sequence[EventRecord]) -> None:
        for event in events:
            body = objs.event_object(event, instance=self.instance, uid=self._uid_of(event))
            self.events.remember(self.client.create(EVENTS, body))

    def _uid_of(self, event: EventRecord) -> str | None:
        """The uid of the object an event regards, from the caches (None if not cached)."""
        cache = {"Job": self.jobs, "Pod": self.pods, "Node": self.nodes}.get(event.kind)
        found = None if cache is None else cache.get(event.namespace, event.name)
        return None if found is None else found["metadata"].get("uid")

    def list_events(
        self, *, kind: str | None = None, namespace: str | None = None, name: str | None = None
    ) -> list[EventRecord]:
        """Our Events in time order (creation order among equal times), filtered."""
        ordered = sorted(self.events.items(), key=lambda o: (objs.event_record(o).time, _rv(o)))
        found = [objs.event_record(o) for o in ordered]
        return [
            e for e in found
            if (kind is None or e.kind == kind) and (namespace is None or e.namespace == namespace)
            and (name is None or e.name == name)
        ]  # fmt: skip

    def _delete(self, res: Any, cache: ObjectCache, namespace: str, name: str) -> None:
        with suppress(NotFoundError):
            self.client.delete(res, name, namespace=namespace or None)
        cache.forget(namespace, name)


@contextmanager
def named_errors(what: str) -> Iterator[None]:
    """Re-raise a 404/409 naming the store's object (``job ns/name``) first."""
    try:
        yield
    except NotFoundError as exc:
        raise NotFoundError(f"{what} not found ({exc})") from exc
    except ConflictError as exc:
        raise ConflictError(f"{what} already exists or changed ({exc})") from exc


def _rv(obj: dict[str, Any]) -> int:
    value = str(obj["metadata"].get("resourceVersion") or "0")
    return int(value) if value.isdigit() else 0
