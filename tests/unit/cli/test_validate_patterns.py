"""``trainguard validate`` refuses log patterns the linear-time engine (RE2) cannot run."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from tests.conftest import EXAMPLES
from trainguard.cli.main import app

runner = CliRunner()
RULES = "spec.runPolicy.logMonitoringConfiguration"


def test_backreference_lookahead_and_huge_patterns_exit_2_naming_the_field(
    tmp_path: Path,
) -> None:
    doc = yaml.safe_load((EXAMPLES / "full-run-policy.yaml").read_text())
    rules = doc["spec"]["runPolicy"]["logMonitoringConfiguration"]
    rules[0]["logPattern"] = r"(\w+) \1"
    rules[1]["logPattern"] = r"Loss(?=: )"
    rules[2]["stopPattern"] = "((?:a|b|ab|ba)?){0,999}Z"
    bad = tmp_path / "job.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2, result.output
    for index, field, words in (
        (0, "logPattern", "not supported by RE2"),
        (1, "logPattern", "invalid perl operator: (?="),
        (2, "stopPattern", "pattern too complex"),
    ):
        assert f"{bad}: {RULES}[{index}].{field}: " in result.stderr, result.stderr
        line = next(x for x in result.stderr.splitlines() if f"[{index}].{field}" in x)
        assert words in line
    assert "Traceback" not in result.output
