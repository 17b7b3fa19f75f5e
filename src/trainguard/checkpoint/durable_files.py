"""The durable tier's file modes and the sweep of temporaries that no live writer owns.

**Modes.** A checkpoint is the model: by default its files are ``0600`` and its directories
``0700``, whatever the umask. A team that shares checkpoints through a group sets another
mode (``file_mode`` of `CheckpointManager`/`DurableTier`, or ``TRAINGUARD_CHECKPOINT_FILE_MODE``);
directories get the file mode plus ``x`` wherever it has ``r``. The temporary directory is
created with the directory mode *before* DCP writes into it, so files are never reachable by
others while they are written; each file gets the file mode before the step is committed.
Modes apply to local file systems only (object stores have no POSIX modes).

**Stale temporaries.** A worker SIGKILLed mid-save leaves ``.tmp-step_N/`` behind (tens of MB
per step, forever). The coordinator (rank 0) sweeps them, and the rule for which ones is what
makes that safe with several ranks writing into the same directory:

* a durable save is collective: every rank of the checkpoint group writes into the same
  ``.tmp-step_N`` and only while all of them are inside the same save, and saves run one at a
  time, in order, on each rank's background thread;
* so when the coordinator is *constructed* (no save of this incarnation has begun; creating
  the group is collective) or has *just committed* step N (the only save in flight is over),
  every temporary it sees belongs to an incarnation whose workers are gone — the agent stops
  every worker of a job before it starts them again — and all of them are swept;
* ranks that save without a process group (torch.distributed not initialized, world size > 1)
  are not coordinated: another rank may be writing any step right now. There the coordinator
  sweeps only temporaries of steps *older than the newest committed step*, which no writer can
  still commit; the rest wait for a later commit.

A temporary this process is writing itself is never swept.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

from trainguard import constants as c
from trainguard.errors import UsageError
from trainguard.permissions import PRIVATE_FILE, private_dir

log = logging.getLogger("trainguard.checkpoint")

DEFAULT_FILE_MODE = PRIVATE_FILE
OWNER_READ_WRITE = 0o600
LOCAL_PROTOCOLS = ("file", "local")


def file_mode_setting(value: int | str | None, env: Mapping[str, str] | None = None) -> int:
    """The durable file mode: ``value``, else ``TRAINGUARD_CHECKPOINT_FILE_MODE``, else 0600.

    Raises:
        UsageError: not an octal mode in 0..0777, or one without owner read+write (the
            writer must be able to read back and replace its own files).
    """
    source = os.environ if env is None else env
    raw = value if value is not None else source.get(c.ENV_CHECKPOINT_FILE_MODE)
    if raw is None or raw == "":
        return DEFAULT_FILE_MODE
    name = "file_mode" if value is not None else c.ENV_CHECKPOINT_FILE_MODE
    shown = f"{raw:#o}" if isinstance(raw, int) else repr(raw)
    try:
        mode = raw if isinstance(raw, int) else int(str(raw), 8)
    except ValueError as exc:
        raise UsageError(f"{name}={shown} is not an octal file mode such as 0600") from exc
    if not 0 <= mode <= 0o777 or mode & OWNER_READ_WRITE != OWNER_READ_WRITE:
        raise UsageError(f"{name}={shown}: give an octal mode <= 0777 with owner rw (0600)")
    return mode


def dir_mode_for(file_mode: int) -> int:
    """Directory mode for ``file_mode``: the same bits plus ``x`` wherever ``r`` is set."""
    return file_mode | ((file_mode & 0o444) >> 2)


class DurableModes:
    """Applies the durable tier's modes on a local file system; no-ops elsewhere.

    Args:
        fs: the tier's fsspec file system.
        protocol: its protocol name.
        file_mode: mode of every file (directories: `dir_mode_for`).
    """

    def __init__(self, fs: Any, protocol: str, file_mode: int) -> None:
        self.fs, self.file_mode = fs, file_mode
        self.dir_mode = dir_mode_for(file_mode)
        self.local = protocol in LOCAL_PROTOCOLS

    def make_dir(self, path: str) -> None:
        """Create ``path`` (and missing parents) with the directory mode."""
        if self.local:
            private_dir(path, mode=self.dir_mode)

    def apply(self, paths: Iterable[str]) -> None:
        """Give each file the file mode."""
        if not self.local:
            return
        for path in paths:
            os.chmod(path, self.file_mode)


def stale_steps(
    names: Iterable[str], *, prefix: str, exclusive: bool, newest: int | None, busy: int | None
) -> list[int]:
    """Steps of the temporaries in ``names`` that the sweep may delete (the module's rule).

    Args:
        names: entries of the job's durable directory (base names).
        prefix: the temporaries' prefix (``.tmp-step_``).
        exclusive: the caller is the only writer right now (collective group, or one rank).
        newest: the newest committed step, if any.
        busy: the step this process is writing, never swept.
    """
    found = []
    for name in names:
        digits = name.removeprefix(prefix)
        if not (name.startswith(prefix) and digits.isdigit()) or int(digits) == busy:
            continue
        step = int(digits)
        if exclusive or (newest is not None and step < newest):
            found.append(step)
    return sorted(found)


def remove_temporaries(fs: Any, root: str, prefix: str, steps: Iterable[int]) -> list[int]:
    """Delete ``<root>/<prefix><step>`` for each step; return the steps removed."""
    removed = []
    for step in steps:
        path = posixpath.join(root, f"{prefix}{step}")
        try:
            fs.rm(path, recursive=True)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("durable tier: cannot remove stale temporary %s: %s", path, exc)
            continue
        log.warning("durable tier: removed stale temporary %s (an interrupted save)", path)
        removed.append(step)
    return removed
