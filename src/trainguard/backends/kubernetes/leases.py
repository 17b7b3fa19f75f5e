"""The controller lease as a ``coordination.k8s.io/v1`` Lease (``trainguard-controller``).

`trainguard.controller.lease.Leadership` elects the operator's leader through the `Store`'s
compare-and-swap on ``(holder, renewals)``; here that row is a Lease object, the way every
Kubernetes controller elects its leader, so ``kubectl get lease trainguard-controller`` shows
who leads: ``spec.holderIdentity``, ``leaseDurationSeconds``, ``acquireTime``, ``renewTime``
and ``leaseTransitions`` mean what they mean for client-go. Our record's other fields —
the renewal counter that challengers watch, the holder's pid, its callback and metrics URLs,
the exact duration — are annotations.

Every lease operation reads the Lease fresh from the API server rather than from the cache
(a challenger's takeover must be seen at once by a fenced writer), and every write carries the
resourceVersion it was computed from: two controllers racing for the lease cannot both win,
the loser's write is refused with 409 and it sees None. Releasing clears ``holderIdentity``
(as client-go does) instead of deleting, again guarded by the resourceVersion.
"""

from __future__ import annotations

import math
from typing import Any

from trainguard import constants as c
from trainguard.backends.kubernetes.client import LEASES, KubeClient
from trainguard.backends.kubernetes.store_jobs import parse_time
from trainguard.backends.kubernetes.store_objects import micro_time
from trainguard.errors import ConflictError, LeaseLostError, NotFoundError
from trainguard.store.records import Lease

PREFIX = "trainguard.io/lease-"
RENEWALS, PID, CALLBACK, METRICS, DURATION = (
    f"{PREFIX}{k}" for k in ("renewals", "pid", "callback-url", "metrics-url", "duration")
)


class LeaseKeeper:
    """Compare-and-swap of the one controller Lease in ``namespace``."""

    def __init__(self, client: KubeClient, namespace: str, name: str = c.CONTROLLER_LEASE) -> None:
        self.client, self.namespace, self.name = client, namespace, name

    def fetch(self) -> dict[str, Any] | None:
        """The Lease object as the server has it now, or None."""
        try:
            return self.client.get(LEASES, self.name, namespace=self.namespace)
        except NotFoundError:
            return None

    def current(self) -> Lease | None:
        """The lease, if someone holds it."""
        return lease_record(self.fetch())

    def holder(self) -> str | None:
        """Who holds the lease now (fresh), or None."""
        current = self.current()
        return None if current is None else current.holder

    def take(self, lease: Lease, *, expect: tuple[str, int] | None) -> Lease | None:
        """Write ``lease`` if the Lease still shows ``expect``; the lease written, or None."""
        obj = self.fetch()
        current = lease_record(obj)
        if (None if current is None else (current.holder, current.renewals)) != expect:
            return None
        taken = Lease(
            lease.holder, lease.pid, lease.heartbeat, lease.callback_url, lease.metrics_url,
            0 if current is None else current.renewals + 1, lease.duration,
        )  # fmt: skip
        try:
            if obj is None:
                self.client.create(LEASES, lease_object(taken, None, self.namespace, self.name))
            else:
                self.client.replace(LEASES, lease_object(taken, obj, self.namespace, self.name))
        except ConflictError:
            return None
        return taken

    def release(self, holder: str) -> None:
        """Clear the lease if ``holder`` has it (a lost race leaves it to the winner)."""
        obj = self.fetch()
        current = lease_record(obj)
        if obj is None or current is None or current.holder != holder:
            return
        spec = {**obj.get("spec", {}), "holderIdentity": None, "renewTime": None}
        try:
            self.client.replace(LEASES, {**obj, "spec": _present(spec)})
        except ConflictError:
            return


class FencedLease:
    """The `Store`'s lease methods over a `LeaseKeeper` (a base of `KubernetesStore`)."""

    leases: LeaseKeeper
    _fence: str | None = None

    def current_lease(self) -> Lease | None:
        """The controller lease, if anyone holds it (read fresh)."""
        return self.leases.current()

    def take_lease(self, lease: Lease, *, expect: tuple[str, int] | None) -> Lease | None:
        """Compare-and-swap the Lease on ``expect`` = ``(holder, renewals)``."""
        return self.leases.take(lease, expect=expect)

    def release_lease(self, holder: str) -> None:
        """Clear the Lease if ``holder`` has it."""
        self.leases.release(holder)

    def fence(self, holder: str | None) -> None:
        """Refuse every later write unless ``holder`` holds the lease (None: stop fencing)."""
        self._fence = holder

    def _check_fence(self) -> None:
        """`LeaseLostError` when fenced and the Lease (read fresh) names someone else."""
        if self._fence is None:
            return
        holder = self.leases.holder()
        if holder != self._fence:
            raise LeaseLostError(
                f"controller {self._fence} lost its lease"
                + (f" to {holder}" if holder is not None else "")
                + "; the write was refused"
            )


def lease_record(obj: dict[str, Any] | None) -> Lease | None:
    """The record of Lease ``obj`` (None when nobody holds it)."""
    spec = (obj or {}).get("spec") or {}
    if obj is None or not spec.get("holderIdentity"):
        return None
    notes = obj["metadata"].get("annotations") or {}
    duration = notes.get(DURATION) or spec.get("leaseDurationSeconds") or 10
    return Lease(
        holder=spec["holderIdentity"],
        pid=int(notes.get(PID) or 0),
        heartbeat=parse_time(spec.get("renewTime")),
        callback_url=notes.get(CALLBACK),
        metrics_url=notes.get(METRICS),
        renewals=int(notes.get(RENEWALS) or 0),
        duration=float(duration),
    )


def lease_object(
    lease: Lease, current: dict[str, Any] | None, namespace: str, name: str
) -> dict[str, Any]:
    """The Lease object holding ``lease`` (``current`` updated, or a new one)."""
    old = lease_record(current)
    old_spec = (current or {}).get("spec") or {}
    transitions = int(old_spec.get("leaseTransitions") or 0)
    moved = old is None or old.holder != lease.holder
    spec = {
        "holderIdentity": lease.holder,
        "leaseDurationSeconds": max(1, math.ceil(lease.duration)),
        "acquireTime": micro_time(lease.heartbeat) if moved else old_spec.get("acquireTime"),
        "renewTime": micro_time(lease.heartbeat),
        "leaseTransitions": transitions + (1 if moved and current is not None else 0),
    }
    meta = dict((current or {}).get("metadata") or {"name": name, "namespace": namespace})
    meta["annotations"] = _present(
        {
            **(meta.get("annotations") or {}),
            RENEWALS: str(lease.renewals),
            PID: str(lease.pid),
            CALLBACK: lease.callback_url,
            METRICS: lease.metrics_url,
            DURATION: repr(lease.duration),
        }
    )
    base = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease"}
    return {**base, "metadata": meta, "spec": _present(spec)}


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
