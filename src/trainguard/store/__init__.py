"""Persistence of jobs, pods, nodes, events and restart history.

Everything outside this package is typed against the `Store` protocol
(`trainguard.store.base`); `SqliteStore` is the embedded default (one file under
``$TRAINGUARD_HOME``), named only by composition roots. The records are plain dataclasses
(`trainguard.store.records`) so the controller never holds a database session. `home()` says
where local state lives.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainguard import constants as c
from trainguard.store.base import NodePatch, StepWrite, Store
from trainguard.store.records import (
    EventRecord,
    FaultOutcome,
    FaultRequest,
    JobRecord,
    Lease,
    NodeRecord,
    PodRecord,
    RestartRecord,
    job_key,
)
from trainguard.store.sqlite import SqliteStore

__all__ = [
    "EventRecord",
    "FaultOutcome",
    "FaultRequest",
    "JobRecord",
    "Lease",
    "NodePatch",
    "NodeRecord",
    "PodRecord",
    "RestartRecord",
    "SqliteStore",
    "StepWrite",
    "Store",
    "home",
    "job_key",
    "open_store",
]


def home() -> Path:
    """``$TRAINGUARD_HOME``, or ``~/.trainguard``."""
    return Path(os.environ.get(c.ENV_HOME) or Path.home() / ".trainguard")


def open_store(root: Path | None = None) -> SqliteStore:
    """The store of the local cluster rooted at ``root`` (default `home()`)."""
    return SqliteStore((root or home()) / "state.db")
