"""``trainguard health check`` as a user runs it, and the sink factory's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainguard import constants as c
from trainguard.cli.health import make_sink
from trainguard.cli.main import app
from trainguard.errors import UsageError

runner = CliRunner()
XID = "kernel: NVRM: Xid (PCI:0000:b9:00): {code}, pid=1, name=python\n"


def test_health_check_reads_a_kernel_log_and_exits_1_on_a_fault(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_text(XID.format(code=13) + XID.format(code=64))
    result = runner.invoke(
        app, ["health", "check", "--checks", "KernelLog", "--kernel-log", str(log), "-o", "json"]
    )
    assert result.exit_code == 1, result.output
    (report,) = json.loads(result.stdout)["reports"]
    assert report["status"] == "Unhealthy"
    assert report["action"] == c.HEALTH_PENDING_REPLACEMENT
    assert [f["xid"] for f in report["evidence"]["findings"]] == [64]


def test_health_check_passes_on_a_clean_log_and_gpu_checks_are_not_applicable(
    tmp_path: Path,
) -> None:
    log = tmp_path / "kern.log"
    log.write_text("eth0: link up\n")
    result = runner.invoke(
        app,
        [
            "health",
            "check",
            "--checks",
            "KernelLog,DiskSpace,GpuEcc",
            "--kernel-log",
            str(log),
            "--disk-path",
            str(tmp_path),
            "-o",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    statuses = {r["check"]: r["status"] for r in json.loads(result.stdout)["reports"]}
    assert statuses["KernelLog"] == "Healthy" and statuses["DiskSpace"] == "Healthy"
    assert statuses["GpuEcc"] in ("NotApplicable", "Healthy")  # Healthy only on a real GPU


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--checks", "Nope"], "unknown check(s) ['Nope']"),
        (["--checks", "ClockSkew"], "ClockSkew needs the controller's URL"),
        (["--output", "xml"], "--output: 'xml' is not supported here; use one of text, json, yaml"),
    ],
)
def test_health_check_usage_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["health", "check", *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_make_sink_names_the_missing_store_and_the_unknown_node(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no trainguard cluster store found at"):
        make_sink("node-0", root=tmp_path)
    from trainguard.store.records import NodeRecord
    from trainguard.store.sqlite import SqliteStore

    SqliteStore(tmp_path / "state.db").save_node(NodeRecord("node-0"))
    with pytest.raises(UsageError, match=r"node 'node-9' is not in the cluster .*node-0"):
        make_sink("node-9", root=tmp_path)
    assert make_sink("node-0", root=tmp_path).node_labels("node-0") == {}


def test_health_check_for_an_unknown_simulated_node_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainguard.store.sqlite import SqliteStore

    SqliteStore(tmp_path / "state.db")
    monkeypatch.setenv(c.ENV_HOME, str(tmp_path))
    result = runner.invoke(app, ["health", "check", "--node", "node-7", "--checks", "Zombies"])
    assert result.exit_code == 2
    assert "node 'node-7' is not in the cluster" in result.stderr
