"""``metadata.name`` and ``metadata.generateName`` are checked as Kubernetes checks them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.spec.test_manifest_limits import job
from trainguard import constants as c
from trainguard.cli.main import app
from trainguard.errors import SpecError
from trainguard.spec import load_jobs


def with_generate_name(prefix: str) -> str:
    return job().replace("  name: limits", f"  generateName: {prefix!r}")


@pytest.mark.parametrize(
    "prefix", ["../../x", "x/../../y", "/tmp/x-", "UPPER-", ".hidden-", "a" * 58, "a..b-"]
)
def test_bad_generate_name_is_refused_with_its_path(prefix: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_jobs(with_generate_name(prefix), source="job.yaml")
    (issue,) = caught.value.issues
    assert issue.path == "metadata.generateName"
    assert "at most 57 lowercase alphanumerics" in issue.message


@pytest.mark.parametrize("prefix", ["train-", "train", "a" * 57, "team.train-"])
def test_kubernetes_style_prefixes_pass(prefix: str) -> None:
    (loaded,) = load_jobs(with_generate_name(prefix), source="job.yaml")
    assert loaded.job.metadata.generate_name == prefix


def test_bad_name_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        load_jobs(job().replace("name: limits", "name: ../../x"), source="job.yaml")
    assert caught.value.issues[0].path == "metadata.name"


def test_run_with_generate_name_escaping_home_exits_2_and_writes_nothing_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "a" / "b" / "home"
    monkeypatch.setenv(c.ENV_HOME, str(home))
    path = tmp_path / "job.yaml"
    path.write_text(with_generate_name("../../x"))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "metadata.generateName" in result.stderr
    outside = [p for p in tmp_path.rglob("*") if "home" not in p.parts and p != path]
    assert all(p in (tmp_path / "a", tmp_path / "a" / "b") for p in outside), outside
