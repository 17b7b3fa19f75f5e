"""A durable tier that runs out of space: clear error, training continues on memory.

The disk is a real 256 KiB tmpfs mounted for the test (skipped where mounting is not
permitted, e.g. unprivileged CI). The same scenario also runs on `EnospcFileSystem`, an fsspec
local file system whose writes fail with ENOSPC once 256 KiB have been written, which is what a
full disk does, so the behaviour is covered everywhere.
"""

from __future__ import annotations

import errno
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
import torch
from fsspec.implementations.local import LocalFileSystem

from tests.unit.checkpoint.test_agent_reports import FakeAgentSocket
from trainguard import constants as c
from trainguard import ipc
from trainguard.checkpoint import CheckpointManager, TierName

CAPACITY = 256 * 1024


class _Limited:
    """A writable file that raises ENOSPC past the file system's remaining capacity."""

    def __init__(self, inner: Any, owner: type[EnospcFileSystem]) -> None:
        self._inner, self._owner = inner, owner

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if self._owner.written + size > CAPACITY:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._owner.written += size
        return int(self._inner.write(data))

    def __enter__(self) -> _Limited:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class EnospcFileSystem(LocalFileSystem):  # type: ignore[misc]
    protocol = "tgenospc"
    written = 0

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        handle = super()._open(path, mode, **kwargs)
        return _Limited(handle, type(self)) if "w" in mode else handle


@pytest.fixture(params=["tmpfs", "enospc-fs"])
def full_disk_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    mount = tmp_path / "small"
    mount.mkdir()
    if request.param == "enospc-fs":
        fsspec.register_implementation(EnospcFileSystem.protocol, EnospcFileSystem, clobber=True)
        EnospcFileSystem.written = 0
        yield f"{EnospcFileSystem.protocol}://{mount}"
        return
    command = ["mount", "-t", "tmpfs", "-o", f"size={CAPACITY}", "tmpfs", str(mount)]
    if subprocess.run(command, capture_output=True, check=False).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here (the enospc-fs case still runs)")
    try:
        yield f"file://{mount}"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_durable_disk_is_reported_and_memory_keeps_working(
    full_disk_uri: str, shm_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manager = CheckpointManager(
        full_disk_uri, shm_dir=shm_root, job="full", memory_every=1, durable_every=2
    )
    try:
        with caplog.at_level(logging.ERROR, logger="trainguard.checkpoint"):
            for step in (1, 2, 3):
                assert manager.save(step, {"w": torch.full((CAPACITY,), float(step))})
            manager.wait()
        assert manager.errors.by_kind == {"StorageFull": 1}
        assert any("no space" in r.getMessage().lower() for r in caplog.records)
        assert manager.durable is not None and manager.durable.steps() == []
        root = Path(full_disk_uri.split("://", 1)[1]) / "full"
        assert not list(root.glob(".tmp-step_*")), "temporary directory left behind"
        target: dict[str, Any] = {}
        assert manager.load_latest(target) == 3
        assert manager.restored is not None and manager.restored.tier is TierName.MEMORY
        assert torch.equal(target["w"], torch.full((CAPACITY,), 3.0))
    finally:
        manager.close()


def test_full_durable_disk_is_reported_to_the_agent(
    full_disk_uri: str, shm_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = FakeAgentSocket(tmp_path / "agent.sock", {})
    monkeypatch.setenv(c.ENV_AGENT_SOCKET, str(agent.path))
    manager = CheckpointManager(full_disk_uri, shm_dir=shm_root, job="full", rank=0,
                                world_size=1, memory_every=1, durable_every=2)  # fmt: skip
    try:
        for step in (1, 2, 3):
            manager.save(step, {"w": torch.full((CAPACITY,), float(step))})
        manager.wait()
    finally:
        manager.close()
        agent.close()
    failed = [m for m in agent.messages if m["type"] == ipc.CKPT_SAVE_FAILED]
    assert len(failed) == 1, agent.types()
    assert (failed[0]["step"], failed[0]["rank"], failed[0]["tier"]) == (2, 0, "durable")
    assert "no space left" in failed[0]["error"].lower()
