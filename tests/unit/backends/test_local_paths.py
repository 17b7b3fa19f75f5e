"""The local backend builds pod, memory and checkpoint paths only from DNS-1123 names.

A job named ``../../x`` (what ``generateName: ../../x`` produced before names were checked)
must not create a directory outside ``TRAINGUARD_HOME`` or the node's shared memory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trainguard.backends.base import PodLaunch
from trainguard.backends.local import LocalBackend
from trainguard.backends.local.cluster import LocalClusterConfig
from trainguard.errors import UnsafeName
from trainguard.spec.k8s import Container
from trainguard.store import SqliteStore


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    home = tmp_path / "deep" / "home"
    home.mkdir(parents=True)
    config = LocalClusterConfig(shm_root=str(tmp_path / "shm"))
    return LocalBackend(store=SqliteStore(home / "state.db"), home=home, config=config)


def launch(**names: str) -> PodLaunch:
    fields = {"namespace": "default", "job": "train", "pod": "train-pods-0", "node": "node-0"}
    return PodLaunch(
        **{**fields, **names},
        job_uid="0123456789abcdef",
        replica_spec="pods",
        node_rank=0,
        spare=False,
        attempt=0,
        container=Container(name="pytorch", command=["true"]),
        nproc_per_node="1",
        nnodes=1,
        token="t",
    )


@pytest.mark.parametrize(
    "names",
    [{"job": "../../x"}, {"namespace": ".."}, {"pod": "../../../x"}, {"node": "../../x"}],
    ids=["job", "namespace", "pod", "node"],
)
def test_a_pod_with_a_path_escaping_name_is_refused_and_writes_nothing(
    tmp_path: Path, backend: LocalBackend, names: dict[str, str]
) -> None:
    before = sorted(p for p in tmp_path.rglob("*") if "home" not in p.parts)
    with pytest.raises(UnsafeName):
        backend.create_pod(launch(**names), now=0.0)
    after = sorted(p for p in tmp_path.rglob("*") if "home" not in p.parts)
    assert after == before
    assert not (tmp_path / "x").exists() and not (tmp_path / "deep" / "x").exists()


def test_checkpoint_and_memory_paths_refuse_escaping_names(backend: LocalBackend) -> None:
    with pytest.raises(UnsafeName):
        backend.cluster.job_checkpoints("default", "../../x", "uid")
    with pytest.raises(UnsafeName):
        backend.cluster.job_memory("node-0", "default", "a/../../b", "uid")
    path = backend.cluster.job_checkpoints("default", "train", "0123456789")
    assert path == backend.home / "checkpoints" / "default" / "train-01234567"
