"""End-to-end: the real CLI, controller, agents and training script on a private local cluster
(`tests.localcluster`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.localcluster import Cluster, local_cluster


@pytest.fixture(autouse=True)
def servers_as_by_default(default_mtc_servers: None) -> None:
    """The MTC node servers on, as a user gets them (the suite turns them off elsewhere)."""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with local_cluster(tmp_path) as env:
        yield env
