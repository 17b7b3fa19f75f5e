"""The embedded local backend: simulated nodes as store records, pods as local processes."""

from trainguard.backends.local.backend import LocalBackend
from trainguard.backends.local.cluster import LocalCluster, LocalClusterConfig

__all__ = ["LocalBackend", "LocalCluster", "LocalClusterConfig"]
