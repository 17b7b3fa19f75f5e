"""``trainguard job suspend|resume`` write ``spec.runPolicy.suspend`` to the local store (the
controller's reaction is `tests/unit/controller/test_suspension` and the scenario's)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.controller.harness import manifest
from trainguard import constants as c
from trainguard.cli.main import app
from trainguard.controller.submit import submit
from trainguard.spec import HyperPodPyTorchJob
from trainguard.store import SqliteStore

runner = CliRunner()


def test_suspend_and_resume_flip_run_policy_suspend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv(c.ENV_HOME, str(home))
    home.mkdir(mode=0o700)
    store = SqliteStore(home / "state.db")
    submit(store, HyperPodPyTorchJob.model_validate(manifest()), now=1.0)
    suspended = runner.invoke(app, ["job", "suspend", "train"])
    assert suspended.exit_code == 0 and "suspended" in suspended.output, suspended.output
    assert store.get_job("default", "train").job.spec.run_policy.suspend is True
    resumed = runner.invoke(app, ["job", "resume", "train"])
    assert resumed.exit_code == 0, resumed.output
    assert store.get_job("default", "train").job.spec.run_policy.suspend is False
    unknown = runner.invoke(app, ["job", "suspend", "nope"])
    assert unknown.exit_code != 0 and "default/nope" in unknown.output
    store.close()
