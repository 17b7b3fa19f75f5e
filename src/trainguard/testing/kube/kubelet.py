"""One fake node's kubelet: registers its Node, heartbeats, and runs the pods bound to it.

All kubelets of a `TestCluster` live in one process, each with its own thread, host IP and pod
CIDR (`podips`), sharing the cluster's pod informer. `step` is one sync of every pod bound to
this node: a new pod gets a `PodSandbox` (its processes), a running one has its status written
through ``pods/status`` when it changed, and a pod with a ``deletionTimestamp`` is stopped
(SIGTERM, SIGKILL after the grace period) and then deleted with ``gracePeriodSeconds=0`` — the
kubelet's half of graceful deletion. `stop` is a lost machine: every process SIGKILLed, no more
heartbeats; pods it ran and finds again after a restart are reported ``ContainerStatusUnknown``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import httpx

from trainguard.constants import LABEL_HOSTNAME
from trainguard.testing.kube.containerlogs import LogRegistry
from trainguard.testing.kube.events import record_event
from trainguard.testing.kube.informer import Informer
from trainguard.testing.kube.nodestatus import DEFAULT_CAPACITY, DEFAULT_LABELS, node_status
from trainguard.testing.kube.podenv import JSON
from trainguard.testing.kube.podips import PodIPPool, node_host_ip, node_pod_cidr
from trainguard.testing.kube.podstatus import without_times
from trainguard.testing.kube.restclient import ApiError, KubeClient, nodes_path, pods_path
from trainguard.testing.kube.sandbox import PodSandbox, rfc3339_now

log = logging.getLogger(__name__)
COMPONENT = "kubelet"
SYNC_SECONDS = 0.1
LEASE_SECONDS = 40
NODE_LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
DEFAULT_GRACE_SECONDS = 30


class Kubelet:
    """The node agent of one fake node; `run` repeats `step` until its stop event is set."""

    def __init__(
        self,
        *,
        name: str,
        index: int,
        client: KubeClient,
        pods: Informer,
        logs: LogRegistry,
        root: Path,
        image_env: Mapping[str, str],
        labels: Mapping[str, str] | None = None,
        capacity: Mapping[str, str] | None = None,
        heartbeat_seconds: float = 5.0,
        network: int = 1,
    ) -> None:
        self.name, self.index, self._network = name, index, network
        self.host_ip = node_host_ip(index, network)
        self._client, self._pods, self._logs = client, pods, logs
        self._root = root / name
        self._image_env = dict(image_env)
        self._labels = {**DEFAULT_LABELS, LABEL_HOSTNAME: name, **(labels or {})}
        self._capacity = dict(capacity or DEFAULT_CAPACITY)
        self._heartbeat_seconds = heartbeat_seconds
        self._next_heartbeat = 0.0
        self._ips = PodIPPool(index, network)
        self.sandboxes: dict[str, PodSandbox] = {}
        self._written: dict[str, JSON] = {}
        self._lost: set[str] = set()  # uids whose processes died with the machine
        self.wake = threading.Event()

    # --- the Node --------------------------------------------------------------------------
    def register(self) -> None:
        """Create the Node (kept when it exists) and post a Ready status."""
        cidr = node_pod_cidr(self.index, self._network)
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": self._labels},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        }
        try:
            self._client.request("POST", nodes_path(), body=node)
        except ApiError as exc:
            if exc.status != 409:
                raise
        self._next_heartbeat = 0.0
        self.heartbeat()

    def heartbeat(self) -> None:
        """Post the node status with ``Ready=True`` when due (``lastHeartbeatTime`` moves)."""
        if time.monotonic() < self._next_heartbeat:
            return
        node = self._client.get(nodes_path(self.name))
        if node is None:
            return
        node["status"] = node_status(
            node.get("status") or {},
            capacity=self._capacity,
            host_ip=self.host_ip,
            name=self.name,
            now=rfc3339_now(),
        )
        self._client.request("PUT", nodes_path(self.name, "status"), body=node)
        self._renew_lease(node)
        self._next_heartbeat = time.monotonic() + self._heartbeat_seconds

    def _renew_lease(self, node: JSON) -> None:
        """The node's Lease in ``kube-node-lease``, renewed with every heartbeat (as upstream)."""
        path = f"{NODE_LEASES}/{self.name}"
        renew = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease = self._client.get(path)
        if lease is None:
            owner = {"apiVersion": "v1", "kind": "Node", "name": self.name}
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": self.name,
                    "namespace": "kube-node-lease",
                    "ownerReferences": [{**owner, "uid": node["metadata"].get("uid", "")}],
                },
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_SECONDS},
            }
            lease["spec"]["renewTime"] = renew
            self._client.request("POST", NODE_LEASES, body=lease)
            return
        lease["spec"] = {**(lease.get("spec") or {}), "renewTime": renew}
        self._client.request("PUT", path, body=lease)

    # --- pods ------------------------------------------------------------------------------
    def step(self) -> None:
        """Heartbeat when due, then sync every pod bound to this node."""
        self.heartbeat()
        mine = {
            p["metadata"].get("uid", ""): p
            for p in self._pods.items()
            if p.get("spec", {}).get("nodeName") == self.name
        }
        for uid, pod in mine.items():
            try:
                self._sync_pod(uid, pod)
            except (ApiError, httpx.HTTPError) as exc:  # one pod's failure stalls no other
                log.warning("kubelet %s: pod %s: %s", self.name, pod["metadata"]["name"], exc)
        for uid in [uid for uid in self.sandboxes if uid not in mine]:
            self._orphaned(uid)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
            except (ApiError, httpx.HTTPError, ValueError) as exc:
                log.warning("kubelet %s: %s", self.name, exc)
            self.wake.wait(SYNC_SECONDS)
            self.wake.clear()

    def _sync_pod(self, uid: str, pod: JSON) -> None:
        sandbox = self.sandboxes.get(uid)
        deleting = bool(pod["metadata"].get("deletionTimestamp"))
        if sandbox is None:
            if deleting:
                self._client.delete(_path(pod), grace_seconds=0, uid=uid)
            elif uid in self._lost:
                self._report_lost(pod)
            elif pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
                self._admit(uid, pod)
            return
        sandbox.pod = pod
        if deleting and not sandbox.terminating:
            self._kill_gracefully(sandbox, pod)
        sandbox.sync(self._lookup)
        self._write_status(pod, sandbox)
        if sandbox.stopped and (deleting or self._finished(sandbox)):
            self._release_ip(sandbox)
        if deleting and sandbox.stopped:
            sandbox.remove_volumes()
            self._client.delete(_path(pod), grace_seconds=0, uid=uid)
            del self.sandboxes[uid]

    @staticmethod
    def _finished(sandbox: PodSandbox) -> bool:
        return all(state.terminated for state in sandbox.containers)

    def _release_ip(self, sandbox: PodSandbox) -> None:
        """Give the pod's address back once (it may be handed out again afterwards)."""
        if not sandbox.ip_released:
            sandbox.ip_released = True
            self._ips.release(sandbox.pod_ip)

    def _admit(self, uid: str, pod: JSON) -> None:
        metadata = pod["metadata"]
        sandbox = PodSandbox(
            pod,
            node_name=self.name,
            host_ip=self.host_ip,
            pod_ip=self.host_ip if pod["spec"].get("hostNetwork") else self._ips.allocate(),
            pod_dir=self._root / f"{metadata.get('namespace', 'default')}_{metadata['name']}_{uid}",
            image_env=self._image_env,
        )
        self.sandboxes[uid] = sandbox
        for state in sandbox.containers:
            self._logs.register(
                metadata.get("namespace", "default"),
                metadata["name"],
                state.name,
                sandbox.log_path(state.name),
                running=lambda s=state: not s.terminated,  # type: ignore[misc]
            )
        sandbox.sync(self._lookup)
        self._write_status(pod, sandbox)

    def _kill_gracefully(self, sandbox: PodSandbox, pod: JSON) -> None:
        grace = pod["metadata"].get("deletionGracePeriodSeconds")
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
        sandbox.terminate(int(grace))
        for state in sandbox.containers:
            if state.running:
                record_event(
                    self._client,
                    pod,
                    kind="Normal",
                    reason="Killing",
                    message=f"Stopping container {state.name}",
                    component=COMPONENT,
                    now=rfc3339_now(),
                )

    def _orphaned(self, uid: str) -> None:
        """A pod gone from the API (force-deleted) whose processes may still run: stop them."""
        sandbox = self.sandboxes[uid]
        sandbox.terminate(0)
        sandbox.sync(self._lookup)
        if sandbox.stopped:
            self._release_ip(sandbox)
            sandbox.remove_volumes()
            del self.sandboxes[uid]

    def _write_status(self, pod: JSON, sandbox: PodSandbox) -> None:
        for kind, reason, message in sandbox.events:
            record_event(
                self._client,
                pod,
                kind=kind,
                reason=reason,
                message=message,
                component=COMPONENT,
                now=rfc3339_now(),
            )
        sandbox.events.clear()
        status = sandbox.status(pod.get("status") or {})
        if self._written.get(sandbox.uid) == without_times(status):
            return
        for _attempt in range(3):
            fresh = self._client.get(_path(pod))
            if fresh is None or fresh["metadata"].get("uid") != sandbox.uid:
                return
            status = sandbox.status(fresh.get("status") or {})
            try:
                self._client.request("PUT", _path(pod, "status"), body={**fresh, "status": status})
            except ApiError as exc:
                if exc.status == 409:
                    continue
                raise
            self._written[sandbox.uid] = without_times(status)
            return

    def _report_lost(self, pod: JSON) -> None:
        """The machine came back without the pod's processes: their state is unknown."""
        self._lost.discard(pod["metadata"].get("uid", ""))
        status = dict(pod.get("status") or {})
        now = rfc3339_now()
        unknown = {
            "exitCode": 137,
            "reason": "ContainerStatusUnknown",
            "message": "The container could not be located when the pod was terminated",
            "startedAt": None,
            "finishedAt": now,
        }
        status["containerStatuses"] = [
            {**c, "ready": False, "started": False, "state": {"terminated": unknown}}
            for c in status.get("containerStatuses") or []
        ]
        status["phase"] = "Failed"
        try:
            self._client.request("PUT", _path(pod, "status"), body={**pod, "status": status})
        except ApiError as exc:
            log.info("lost pod %s not reported: %s", pod["metadata"]["name"], exc)

    def _lookup(self, kind: str, namespace: str, name: str) -> JSON | None:
        plural = {"Secret": "secrets", "ConfigMap": "configmaps"}[kind]
        return self._client.get(f"/api/v1/namespaces/{namespace}/{plural}/{name}")

    def stop(self) -> None:
        """The machine is lost: SIGKILL every container now and forget the sandboxes."""
        for uid, sandbox in list(self.sandboxes.items()):
            sandbox.kill()
            sandbox.remove_volumes()  # the machine and its memory are gone
            self._release_ip(sandbox)
            self._lost.add(uid)
        self.sandboxes.clear()
        self._written.clear()


def _path(pod: JSON, subresource: str = "") -> str:
    metadata = pod["metadata"]
    return pods_path(metadata.get("namespace", "default"), metadata["name"], subresource)
