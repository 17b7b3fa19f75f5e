"""``trainguard agent`` passes every argument to the agent's own (torchrun-based) parser."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from trainguard.agent.main import main
from trainguard.cli.main import app


def test_trainguard_agent_reaches_the_agent_parser() -> None:
    result = CliRunner().invoke(app, ["agent", "--inprocess-restart", "train.py"])
    assert result.exit_code == 2
    assert "--inprocess-restart is not supported" in result.output


def test_help_is_the_agent_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--shutdown-signal", "--server-port", "--pre-train-script", "--hot-spares"):
        assert flag in text
    assert "TRAINGUARD_AGENT_PORT" in text


def test_missing_token_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TRAINGUARD_AGENT_TOKEN", raising=False)
    assert main(["train.py"]) == 2
    assert "no API token" in capsys.readouterr().err
