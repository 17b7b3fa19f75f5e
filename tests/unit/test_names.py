"""`safe_join` accepts DNS-1123 names only and never returns a path outside its root."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainguard.errors import UnsafeName
from trainguard.names import check_path_name, safe_join

HOSTILE = ["..", ".", "../../x", "a/b", "/etc", "", "x\x00y", "UPPER", "-lead", "trail-", "a..b"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeName) as caught:
        safe_join(tmp_path, "default", name, what="job")
    assert f"job {name!r} is not a DNS-1123 name" in str(caught.value)


def test_valid_names_join_under_the_root(tmp_path: Path) -> None:
    path = safe_join(tmp_path, "default", "train-1a2b3c", "train.pods-0")
    assert path == tmp_path / "default" / "train-1a2b3c" / "train.pods-0"
    assert check_path_name("node-12") == "node-12"


def test_a_name_longer_than_253_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeName):
        safe_join(tmp_path, "a" * 254)
