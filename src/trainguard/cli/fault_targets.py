"""Where ``trainguard fault`` sends its requests: the local cluster, or a Kubernetes cluster.

A fault request is a row of the store that the controller carries out in its next step
(`trainguard.controller.fault_injection`), so injecting into a job the Kubernetes operator runs
is the same command with another store: ``--kubeconfig K`` opens `KubernetesStore` on that
cluster (the request becomes one of its fault-request ConfigMaps, which the operator watches)
instead of the local SQLite store. Only the question "is anyone going to carry it out?"
differs: locally a controller runs when its lease holder's process is alive; on Kubernetes we
cannot see the operator's process, so it runs when its Lease was renewed within twice its
duration (the rule of thumb ``kubectl`` users apply to Leases; clock skew aside).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from trainguard.cli.local import open_cluster
from trainguard.store.base import Store

LEASE_SLACK = 2.0
"""A Lease renewed within this many durations counts as held by a running operator."""


@dataclass(frozen=True)
class FaultTarget:
    """A store to put fault requests in, and how to tell whether anyone will act on them."""

    store: Store
    controller_running: Callable[[], bool]
    no_controller_hint: str
    """What to tell a person when no controller runs."""


@contextmanager
def fault_target(kubeconfig: Path | None) -> Iterator[FaultTarget]:
    """The local cluster, or the Kubernetes cluster of ``kubeconfig`` (closed on exit)."""
    if kubeconfig is None:
        cluster = open_cluster()
        yield FaultTarget(
            cluster.store,
            lambda: cluster.live_controller() is not None,
            "no controller runs: start 'trainguard controller' or 'trainguard cluster up'",
        )
        return
    from trainguard.backends.kubernetes.store import KubernetesStore  # noqa: PLC0415 (lazy)

    store = KubernetesStore.connect(kubeconfig)
    try:
        yield FaultTarget(
            store,
            lambda: _lease_fresh(store, now=time.time()),
            f"no operator holds the Lease: start 'trainguard operator --kubeconfig {kubeconfig}'",
        )
    finally:
        store.close()


def _lease_fresh(store: Store, *, now: float) -> bool:
    lease = store.current_lease()
    return lease is not None and now - lease.heartbeat <= LEASE_SLACK * lease.duration
