"""Secrets stay with their owner: every file trainguard creates, checked for real under umask 022.

Each test creates the real thing (the cluster home and its SQLite database with WAL files,
memory-tier slots, peer replicas, durable checkpoints, per-rank worker logs of real worker
processes, the agent's refusal of a readable token file) with the umask most machines use,
then reads the modes back with ``stat``.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch.distributed.elastic.multiprocessing import Std

from trainguard.agent.logfiles import PrivateLogsSpecs
from trainguard.agent.workers import LaunchSpec, WorkerGroup
from trainguard.checkpoint import CheckpointManager
from trainguard.checkpoint.manifest import ShardMeta
from trainguard.checkpoint.replicas import ReplicaStore
from trainguard.cli.local import open_cluster
from trainguard.store.records import NodeRecord


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes_under(root: Path) -> dict[str, int]:
    found = {".": mode(root)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = mode(path)
    return found


def assert_private(root: Path, *, files: int = 0o600, dirs: int = 0o700) -> None:
    wrong = {
        name: f"{value:04o}"
        for name, value in modes_under(root).items()
        if value != (dirs if (root / name).is_dir() else files)
    }
    assert not wrong, f"not private under {root}: {wrong}"


def test_home_and_state_db_with_wal_files_are_private(tmp_path: Path) -> None:
    home = tmp_path / "nested" / "home"
    cluster = open_cluster(home)
    cluster.store.save_node(NodeRecord("node-0"))  # a write: WAL and shared-memory files exist
    names = {p.name for p in home.iterdir()}
    assert {"state.db", "state.db-wal", "state.db-shm"} <= names
    assert mode(home) == 0o700 and mode(home.parent) == 0o700
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        assert mode(home / name) == 0o600, name
    cluster.store.close()


def test_an_existing_loose_home_and_db_are_tightened(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    (home / "state.db").touch()
    (home / "state.db").chmod(0o644)
    cluster = open_cluster(home)
    assert (mode(home), mode(home / "state.db")) == (0o700, 0o600)
    cluster.store.close()


def test_memory_tier_and_durable_checkpoints_are_private(tmp_path: Path) -> None:
    shm, durable = tmp_path / "shm", tmp_path / "durable"
    manager = CheckpointManager(
        f"file://{durable}", shm_dir=shm, job="modes", memory_every=1, durable_every=2
    )
    try:
        for step in (1, 2):
            manager.save(step, {"w": torch.arange(1000.0), "meta": {"step": step}})
        manager.wait()
        assert manager.errors.count == 0 and manager.durable is not None
        assert manager.durable.steps() == [2]
        assert any(p.name.endswith(".json") for p in (shm / "modes" / "rank_0").iterdir())
        assert_private(shm)
        assert_private(durable)
    finally:
        manager.close()


def test_durable_file_mode_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINGUARD_CHECKPOINT_FILE_MODE", "0640")
    durable = tmp_path / "durable"
    manager = CheckpointManager(f"file://{durable}", shm_dir=tmp_path / "shm", job="shared",
                                memory_every=1, durable_every=1)  # fmt: skip
    try:
        manager.save(1, {"w": torch.ones(10)})
        manager.wait()
        assert manager.errors.count == 0
        assert_private(durable / "shared", files=0o640, dirs=0o750)
    finally:
        manager.close()


def test_peer_replicas_are_private(tmp_path: Path) -> None:
    blob = b"x" * 128
    meta = ShardMeta(job="job", rank=1, step=3, world_size=2, slot="slot_0.bin",
                     tensor_bytes=len(blob), skeleton_bytes=0, created=0.0)  # fmt: skip
    ReplicaStore(tmp_path / "shm" / ".replicas").put(meta, blob, keep=2)
    assert_private(tmp_path / "shm")


def test_worker_log_files_of_real_workers_are_private(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    spec = LaunchSpec(
        name="modes",
        entrypoint=sys.executable,
        args=("-c", "print('training output')"),
        envs={0: {"TORCHELASTIC_RUN_ID": "modes"}, 1: {"TORCHELASTIC_RUN_ID": "modes"}},
        log_prefixes={0: "[0]", 1: "[1]"},
    )
    group = WorkerGroup.launch(spec, logs=PrivateLogsSpecs(str(logs), redirects=Std.ALL,
                                                           tee=Std.ALL))  # fmt: skip
    try:
        for rank in (0, 1):
            group.popen(rank).wait(timeout=60)
    finally:
        group.close()
    outputs = list(logs.rglob("stdout.log"))
    assert len(outputs) == 2 and all("training output" in p.read_text() for p in outputs)
    assert_private(logs)


def test_agent_refuses_a_token_file_others_can_read(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret\n")  # 0644 under umask 022
    env = {k: v for k, v in os.environ.items() if k != "TRAINGUARD_AGENT_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "trainguard.agent", "--token-file", str(token), "train.py"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"--token-file {token} has mode 0644" in done.stderr
    assert "Traceback" not in done.stderr
