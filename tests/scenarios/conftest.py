"""The ``driver`` fixture: every scenario runs once per backend, ``local`` and ``kubernetes``.

``kubernetes`` starts a fake cluster (`TestCluster`: the fake API server, scheduler and process
kubelets, 3 nodes) in this process for each test, unless ``TRAINGUARD_TEST_KUBECONFIG`` names a
real cluster's kubeconfig: then the scenarios run there (no fake is started; see
docs/kubernetes.md for what that cluster needs). On the fake, each test ends by checking that
the ClusterRole docs/kubernetes.md documents grants every request trainguard made (`rbac`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.localcluster import local_cluster
from tests.scenarios.driver import Driver
from tests.scenarios.kube import KubeDriver, fake_cluster, running
from tests.scenarios.local import LocalDriver

ENV_KUBECONFIG = "TRAINGUARD_TEST_KUBECONFIG"
NODES = 3


@pytest.fixture(autouse=True)
def servers_as_by_default(default_mtc_servers: None) -> None:
    """The MTC node servers on, as a user gets them (the suite turns them off elsewhere)."""


@pytest.fixture(params=["local", "kubernetes"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Driver]:
    if request.param == "local":
        with local_cluster(tmp_path) as cluster:
            local = LocalDriver(cluster)
            local.start()
            yield local
        return
    yield from _kubernetes(tmp_path)


def _kubernetes(tmp_path: Path) -> Iterator[Driver]:
    real = os.environ.get(ENV_KUBECONFIG)
    if real:
        work = tmp_path / "work"
        work.mkdir()
        yield from running(KubeDriver(Path(real), work, cluster=None))
        return
    with fake_cluster(tmp_path, NODES) as (_, kube):
        yield from running(kube)
