"""``InstanceConnectivity`` with real gloo ranks on 127.0.0.1, and ``trainguard health deep``
end to end over the local cluster's store."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from trainguard import constants as c
from trainguard.backends.local.cluster import LocalCluster, LocalClusterConfig, save_config
from trainguard.cli.main import app
from trainguard.health.deep.config import ConnectivityConfig
from trainguard.health.deep.connectivity import InstanceConnectivity, bus_bandwidth
from trainguard.health.report import HealthStatus, NodeAction
from trainguard.store.sqlite import SqliteStore

# Thresholds far below anything a loaded 2-core machine measures: these tests are about the
# protocol and the failure paths, never about speed.
QUICK = ConnectivityConfig(
    sizes_mb=[0.25, 1.0],
    iterations=3,
    warmup=1,
    latency_iterations=10,
    timeout_s=120,
    min_busbw_gbps=1e-5,
    max_latency_ms=10_000,
)
pytestmark = pytest.mark.slow


def test_bus_bandwidth_follows_nccl_tests() -> None:
    assert bus_bandwidth(1e9, 1.0, 8) == (1.0, 1.75)
    assert bus_bandwidth(1e9, 0.5, 2) == (2.0, 2.0)


def test_two_ranks_all_reduce_correctly_and_report_bandwidth_and_latency() -> None:
    report = InstanceConnectivity(["node-0", "node-1"], QUICK).check(0.0)
    assert report.status is HealthStatus.HEALTHY, report.message
    assert report.evidence["backend"] == "gloo" and report.evidence["worldSize"] == 2
    assert report.evidence["wrongElements"] == 0
    assert report.evidence["sizes"][-1]["busbwGBps"] > 0
    assert report.evidence["latencyMs"] > 0


def test_bandwidth_below_the_threshold_fails_every_node() -> None:
    config = QUICK.model_copy(update={"min_busbw_gbps": 1e6})
    report = InstanceConnectivity(["node-0", "node-1"], config).check(0.0)
    assert report.reason == "BusBandwidthLow" and report.action is NodeAction.REPLACE
    assert "failedNodes" not in report.evidence


def test_a_rank_killed_mid_run_is_named() -> None:
    config = QUICK.model_copy(update={"sizes_mb": [64.0], "iterations": 200, "timeout_s": 90})

    def kill_rank_1(pids: list[int]) -> None:
        victim = psutil.Process(pids[1])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and victim.cpu_times().user < 0.5:
            time.sleep(0.05)  # let it import torch and join
        os.kill(pids[1], signal.SIGKILL)

    report = InstanceConnectivity(["node-0", "node-1"], config, on_spawn=kill_rank_1).check(0.0)
    assert report.reason == "ConnectivityRankFailed"
    assert 1 in report.evidence["failedRanks"] and report.evidence["failedNodes"][-1] == "node-1"
    assert report.evidence["exitCodes"][1] == -signal.SIGKILL
    assert not [
        p
        for p in psutil.Process().children()
        if p.is_running()
        and p.status() != psutil.STATUS_ZOMBIE
        and "spawn" in " ".join(p.cmdline())
    ]


def test_health_deep_cli_marks_passes_and_restores_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    config = LocalClusterConfig(shm_root=str(tmp_path / "shm"))
    save_config(home, config)
    LocalCluster(SqliteStore(home / "state.db"), home, config).ensure_nodes(2, now=time.time())
    monkeypatch.setenv(c.ENV_HOME, str(home))
    deep_config = tmp_path / "deep.yaml"
    deep_config.write_text(
        "instanceStress: {duration_s: 0.3, matrix_size: 128, memory_mb: 4}\n"
        "instanceConnectivity: {sizes_mb: [0.25], iterations: 2, warmup: 1,"
        " latency_iterations: 5, min_busbw_gbps: 0.00001, max_latency_ms: 10000}\n"
    )
    result = CliRunner().invoke(
        app,
        [
            "health",
            "deep",
            "--node",
            "node-0",
            "--nodes",
            "node-0,node-1",
            "--config",
            str(deep_config),
            "-o",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["node-1"]["status"] == c.DEEP_HEALTH_PASSED
    store = SqliteStore(home / "state.db")
    for name in ("node-0", "node-1"):
        labels = store.get_node(name).labels
        assert labels[c.LABEL_DEEP_HEALTH] == c.DEEP_HEALTH_PASSED
        assert labels[c.LABEL_NODE_HEALTH] == c.HEALTH_SCHEDULABLE
    reasons = [e.reason for e in store.list_events(kind="Node", name="node-1")]
    assert reasons[-2:] == [c.REASON_DEEP_HEALTH_STARTED, c.REASON_DEEP_HEALTH_PASSED]


def test_health_deep_cli_rejects_a_bad_config_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(c.ENV_HOME, str(tmp_path))
    bad = tmp_path / "deep.yaml"
    bad.write_text("instanceConnectivity: {min_busbw_gbps: -1}\n")
    result = CliRunner().invoke(app, ["health", "deep", "--node", "n", "--config", str(bad)])
    assert result.exit_code == 2
    assert "instanceConnectivity.min_busbw_gbps" in result.stderr
