"""Opening the local cluster from CLI commands: home directory, store, backend, controller lease.

Every command that touches jobs goes through here, so they all agree on ``$TRAINGUARD_HOME``
and on how to tell whether a controller is running (a fresh lease whose process is alive).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from trainguard.backends.local import LocalBackend
from trainguard.backends.local.cluster import load_config
from trainguard.controller.loop import LEASE_STALE_AFTER
from trainguard.liveness import process_alive
from trainguard.store import Lease, SqliteStore, home


@dataclass
class LocalCluster:
    """The pieces of the local cluster a command needs."""

    home: Path
    store: SqliteStore

    def backend(self) -> LocalBackend:
        """The local backend over this cluster's store."""
        return LocalBackend(store=self.store, home=self.home, config=load_config(self.home))

    def live_controller(self) -> Lease | None:
        """The lease of a running controller, or None."""
        lease = self.store.current_lease()
        if lease is None or time.time() - lease.heartbeat > LEASE_STALE_AFTER:
            return None
        return lease if process_alive(lease.pid) else None


def open_cluster(root: Path | None = None) -> LocalCluster:
    """The local cluster at ``root`` (default ``$TRAINGUARD_HOME`` or ``~/.trainguard``)."""
    directory = root or home()
    directory.mkdir(parents=True, exist_ok=True)
    return LocalCluster(directory, SqliteStore(directory / "state.db"))
