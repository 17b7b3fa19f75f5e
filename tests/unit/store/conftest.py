"""The `Store` implementations the contract suite runs against.

Each entry of `STORES` opens a store over a fresh backing place and can open a second handle
on the same place (another process's view: the lease and fencing tests need two). It also says
how a pod comes to exist before a store records it (`Opener.make_pod`): SQLite's pod rows are
the store's own, so nothing is needed; a Kubernetes store only records what it sees on a Pod
object the backend created, so the harness creates that Pod through the API first.

The Kubernetes half shares one fake API server (with our CRD) for the whole session and wipes
the objects the store uses between tests, so each test starts from an empty cluster quickly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.kubestore import KubeHarness, kube_server_with_crd
from trainguard.store import PodRecord, SqliteStore, Store
from trainguard.testing.kube import KubeApiServer


class Opener:
    """Opens handles on one fresh store; `make_pod` makes a pod exist for the store to record."""

    def __init__(
        self, open_store: Callable[[], Store], make_pod: Callable[[PodRecord], None]
    ) -> None:
        self._open, self.make_pod = open_store, make_pod

    def __call__(self) -> Store:
        return self._open()


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    return Opener(lambda: SqliteStore(tmp_path / "state.db"), lambda pod: None)


def _kubernetes(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    server: KubeApiServer = request.getfixturevalue("kube_server")
    harness = KubeHarness(server, tmp_path)
    request.addfinalizer(harness.close)
    return Opener(harness.open_store, harness.make_pod)


STORES: dict[str, Callable[[pytest.FixtureRequest, Path], Opener]] = {
    "sqlite": _sqlite,
    "kubernetes": _kubernetes,
}


@pytest.fixture(scope="session")
def kube_server() -> Iterator[KubeApiServer]:
    """One fake API server with the HyperPodPyTorchJob CRD for the session."""
    with kube_server_with_crd() as server:
        yield server


@pytest.fixture(params=sorted(STORES))
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a handle on one fresh store of each implementation."""
    return STORES[request.param](request, tmp_path)


@pytest.fixture
def store(opener: Opener) -> Store:
    """A handle on a fresh store of each implementation."""
    return opener()
