"""Loopback addresses for fake nodes and their pods.

On Linux all of 127.0.0.0/8 reaches this machine, so each fake node gets a host IP of its own
and a pod CIDR: every pod binds its own address, and many pods may listen on the same port (the
agent's 8080) side by side. A cluster first claims a network number N (1..254) that no other
cluster on this machine holds — parallel test workers each run clusters — with a lock file
held for its lifetime; node n then has host IP 127.0.N.<n+1> and pod CIDR 127.N.<n>.0/24 (the
first cluster on a machine gets N=1: 127.1.x.y pods). Addresses are handed out round robin and
never reused while a pod holds one, so a stale client reaches nobody rather than the wrong pod.
"""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
import threading
from pathlib import Path
from typing import IO

MAX_NODES = 255
MAX_NETWORK = 254
FIRST_HOST, LAST_HOST = 2, 254
CLAIMS_DIR = Path(tempfile.gettempdir()) / "trainguard-kube-networks"


class NetworkClaim:
    """A network number held (by an exclusive ``flock``) until `release` or process exit."""

    def __init__(self, number: int, handle: IO[bytes]) -> None:
        self.number, self._handle = number, handle

    @classmethod
    def claim(cls, claims_dir: Path = CLAIMS_DIR) -> NetworkClaim:
        """The lowest free network number.

        Raises:
            RuntimeError: all 254 are held by running clusters.
        """
        claims_dir.mkdir(parents=True, exist_ok=True)
        for number in range(1, MAX_NETWORK + 1):
            handle = open(claims_dir / f"{number}.lock", "ab")  # noqa: SIM115 (held open)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            return cls(number, handle)
        raise RuntimeError(f"every fake cluster network is taken (see {claims_dir})")

    def release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def node_host_ip(index: int, network: int = 1) -> str:
    """The InternalIP of the fake node with this index."""
    _check(index)
    return f"127.0.{network}.{index + 1}"


def node_pod_cidr(index: int, network: int = 1) -> str:
    """The pod CIDR (``spec.podCIDR``) of the fake node with this index."""
    _check(index)
    return f"127.{network}.{index}.0/24"


def _check(index: int) -> None:
    if not 0 <= index < MAX_NODES:
        raise ValueError(f"node index {index}: the fake cluster has room for {MAX_NODES} nodes")


class PodIPPool:
    """One node's pod addresses: `allocate` the next free one, `release` it when the pod ends."""

    def __init__(self, index: int, network: int = 1) -> None:
        _check(index)
        self._prefix = f"127.{network}.{index}."
        self._held: set[int] = set()
        self._next = FIRST_HOST
        self._lock = threading.Lock()

    def allocate(self) -> str:
        """The next address nobody holds.

        Raises:
            RuntimeError: every address of the node's /24 is held.
        """
        with self._lock:
            span = LAST_HOST - FIRST_HOST + 1
            for offset in range(span):
                host = FIRST_HOST + (self._next - FIRST_HOST + offset) % span
                if host not in self._held:
                    self._held.add(host)
                    self._next = host + 1
                    return f"{self._prefix}{host}"
        raise RuntimeError(f"no pod address left in {self._prefix}0/24")

    def release(self, address: str) -> None:
        with self._lock:
            if address.startswith(self._prefix):
                self._held.discard(int(address[len(self._prefix) :]))
