"""``trainguard run`` refuses a job the local cluster cannot hold, before creating anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.spec.test_manifest_limits import job
from trainguard import constants as c
from trainguard.backends.local.cluster import MAX_NODES
from trainguard.cli.main import app
from trainguard.store import SqliteStore

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(c.ENV_HOME, str(tmp_path / "home"))
    return tmp_path / "home"


def run(tmp_path: Path, text: str, *args: str) -> tuple[int, str]:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["run", str(path), *args])
    return result.exit_code, result.stderr


def nothing_created(home: Path) -> bool:
    if not (home / "state.db").exists():
        return True
    store = SqliteStore(home / "state.db")
    return not store.list_jobs() and not store.list_nodes() and not store.list_pods()


def test_replicas_100000_exit_2_before_anything_starts(tmp_path: Path, home: Path) -> None:
    code, stderr = run(tmp_path, job(replicas=100_000))
    assert code == 2
    assert "spec.replicaSpecs[0].replicas: must be at most 5000" in stderr
    assert nothing_created(home)


def test_more_replicas_than_local_nodes_is_refused_not_attempted(
    tmp_path: Path, home: Path
) -> None:
    code, stderr = run(tmp_path, job(replicas=MAX_NODES + 1))
    assert code == 2
    assert f"needs {MAX_NODES + 1} nodes; a local cluster has at most {MAX_NODES}" in stderr
    assert nothing_created(home)


def test_too_many_nodes_asked_is_a_usage_error(tmp_path: Path, home: Path) -> None:
    code, stderr = run(tmp_path, job(), "--nodes", "100000")
    assert code == 2
    assert f"a local cluster has at most {MAX_NODES} nodes" in stderr
    assert nothing_created(home)
