"""The durable tier's sweep of stale temporaries and its file-mode setting (real directories)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainguard.checkpoint.base import payload
from trainguard.checkpoint.durable import TMP_PREFIX, DurableTier
from trainguard.checkpoint.durable_files import dir_mode_for, file_mode_setting, stale_steps
from trainguard.checkpoint.tree import flatten
from trainguard.errors import UsageError


def write(tier: DurableTier, step: int) -> None:
    flat = flatten(payload({"w": torch.full((64,), float(step))}, None))
    assert tier.write(step, flat, flat.skeleton_bytes())


def temporary(root: Path, step: int) -> Path:
    path = root / "job" / f"{TMP_PREFIX}{step}"
    path.mkdir(parents=True)
    (path / "__1_0.distcp").write_bytes(b"half a shard")
    return path


def test_the_only_writer_sweeps_every_temporary_on_start_and_after_a_commit(
    tmp_path: Path,
) -> None:
    stale = [temporary(tmp_path, step) for step in (4, 9)]
    tier = DurableTier(f"file://{tmp_path}", job="job", rank=0, world_size=1)
    assert tier.sweep() == [4, 9] and not any(p.exists() for p in stale)
    write(tier, 2)
    later = temporary(tmp_path, 7)  # e.g. an abandoned timeline's save, killed
    write(tier, 3)  # retention after the commit sweeps it
    assert not later.exists() and tier.steps() == [2, 3]


def test_uncoordinated_ranks_keep_temporaries_another_rank_may_be_writing(
    tmp_path: Path,
) -> None:
    # world size 2 without a process group: rank 1 saves on its own schedule.
    tier = DurableTier(f"file://{tmp_path}", job="job", rank=0, world_size=2)
    in_progress = temporary(tmp_path, 7)
    assert tier.sweep() == [] and in_progress.exists()
    write(tier, 5)
    older = temporary(tmp_path, 3)
    write(tier, 6)
    assert not older.exists(), "older than the newest committed step: nobody can commit it"
    assert in_progress.exists(), "newer than the newest committed step: may be in progress"


def test_other_ranks_never_sweep(tmp_path: Path) -> None:
    stale = temporary(tmp_path, 4)
    tier = DurableTier(f"file://{tmp_path}", job="job", rank=1, world_size=1)
    assert tier.sweep() == [] and stale.exists()


def test_stale_steps_rule() -> None:
    names = [".tmp-step_3", ".tmp-step_8", "step_5", ".tmp-step_x", ".tmp-step_6"]
    common = {"prefix": TMP_PREFIX, "newest": 5}
    assert stale_steps(names, exclusive=True, busy=None, **common) == [3, 6, 8]
    assert stale_steps(names, exclusive=True, busy=6, **common) == [3, 8]
    assert stale_steps(names, exclusive=False, busy=None, **common) == [3]
    assert stale_steps(names, prefix=TMP_PREFIX, exclusive=False, newest=None, busy=None) == []


def test_file_mode_setting() -> None:
    assert file_mode_setting(None, {}) == 0o600
    assert file_mode_setting(None, {"TRAINGUARD_CHECKPOINT_FILE_MODE": "0640"}) == 0o640
    assert file_mode_setting(0o660, {"TRAINGUARD_CHECKPOINT_FILE_MODE": "0600"}) == 0o660
    assert file_mode_setting("644", {}) == 0o644
    assert (dir_mode_for(0o600), dir_mode_for(0o640), dir_mode_for(0o664)) == (
        0o700,
        0o750,
        0o775,
    )
    with pytest.raises(UsageError, match="TRAINGUARD_CHECKPOINT_FILE_MODE='rw-r'"):
        file_mode_setting(None, {"TRAINGUARD_CHECKPOINT_FILE_MODE": "rw-r"})
    with pytest.raises(UsageError, match=r"file_mode=0o400: .*owner rw"):
        file_mode_setting(0o400, {})
    with pytest.raises(UsageError, match="file_mode"):
        file_mode_setting(0o1600, {})
