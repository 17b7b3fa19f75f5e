"""``trainguard validate`` on hostile manifests: exit 2 with the limit named, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.spec.test_manifest_limits import billion_laughs, job
from trainguard.cli.main import app

runner = CliRunner()

CASES = {
    "alias bomb": (job(note="*l8", prefix=billion_laughs()), "expands (aliases included)"),
    "deep nesting": (job(note="[" * 100_000 + "]" * 100_000), "levels deep"),
    "replicas 100000": (job(replicas=100_000), "replicas: must be at most 5000"),
    "NUL in env": (
        job().replace("command: [x]", 'command: [x], env: [{name: A, value: "a\\0b"}]'),
        "env[0].value: must not contain a NUL byte",
    ),
    "= in env name": (
        job().replace("command: [x]", "command: [x], env: [{name: A=B, value: b}]"),
        "env[0].name: must be printable ASCII without '='",
    ),
}


@pytest.mark.parametrize(("text", "words"), CASES.values(), ids=CASES.keys())
def test_hostile_manifest_exits_2_naming_the_problem(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert words in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def test_a_50_mb_file_is_refused_after_reading_one_mebibyte(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(job(note="x" * (50 * 1024 * 1024)))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}: manifest is larger than the limit of 1048576 bytes" in result.stderr


def test_a_50_mb_stdin_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "-"], input=job(note="x" * (50 * 1024 * 1024)))
    assert result.exit_code == 2
    assert "<stdin>: manifest is larger than the limit" in result.stderr
