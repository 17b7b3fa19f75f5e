"""Opening the local cluster from CLI commands: home directory, store, backend, controller lease.

Every command that touches jobs goes through here, so they all agree on ``$TRAINGUARD_HOME``
and on how to tell whether a controller is running: a lease whose holder process is alive. A
one-shot command cannot judge a lease's age (the lease carries no time a process other than
its holder may compare, see `trainguard.controller.lease`), and a live holder that stopped
renewing is taken over by the next controller anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainguard.backends.local import LocalBackend
from trainguard.backends.local.cluster import load_config
from trainguard.liveness import process_alive
from trainguard.permissions import private_dir
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
        return lease if lease is not None and process_alive(lease.pid) else None


def open_cluster(root: Path | None = None) -> LocalCluster:
    """The local cluster at ``root`` (default ``$TRAINGUARD_HOME`` or ``~/.trainguard``)."""
    directory = root or home()
    private_dir(directory)
    return LocalCluster(directory, SqliteStore(directory / "state.db"))
