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
from tests.scenarios.kube import KubeDriver
from tests.scenarios.local import LocalDriver
from tests.scenarios.rbac import TRAINGUARD_AGENT, missing_permissions
from trainguard.testing.kube.cluster import TestCluster

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
    work = tmp_path / "work"
    work.mkdir()
    real = os.environ.get(ENV_KUBECONFIG)
    if real:
        kube = KubeDriver(Path(real), work, cluster=None)
        yield from _running(kube)
        return
    with TestCluster(nodes=NODES, workdir=tmp_path / "cluster") as cluster:
        yield from _running(KubeDriver(cluster.kubeconfig, work, cluster=cluster))
        used = cluster.server.audit.permissions(user_agent=TRAINGUARD_AGENT)
        missing = missing_permissions(used)
        assert not missing, f"docs/kubernetes.md's ClusterRole lacks {missing}"


def _running(kube: KubeDriver) -> Iterator[Driver]:
    kube.start()
    try:
        yield kube
    finally:
        if kube.job_exists():
            kube.kubectl("delete", "hyperpodpytorchjob", "quickstart", "--timeout=60s", check=False)
        kube.close()
