"""Fixture: a private local cluster per test, torn down even when the test fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cli.cluster import Local


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    cluster = Local(tmp_path)
    try:
        yield cluster
    finally:
        cluster.down()
