"""The one-thread tee of worker log files to the agent's output."""

from __future__ import annotations

import io
from pathlib import Path

from torch.distributed.elastic.multiprocessing.tail_log import TailLog

from trainguard.agent.tee import LogTee


def test_tee_copies_every_line_with_its_prefix_and_the_rest_at_stop(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    first, second = tmp_path / "0.log", tmp_path / "1.log"
    first.write_text("one\ntwo\n")
    tee = LogTee([(str(first), "[rank0]:", out), (str(second), "[rank1]:", err)], name="t")
    tee.start()
    second.write_text("late file\npartial")  # created after the start, last line unfinished
    with first.open("a") as handle:
        handle.write("three\n")
    tee.stop()
    assert out.getvalue() == "[rank0]:one\n[rank0]:two\n[rank0]:three\n"
    assert err.getvalue() == "[rank1]:late file\n[rank1]:partial"
    assert tee.stopped()


def test_tee_takes_over_torch_tails_files_prefixes_and_destinations(tmp_path: Path) -> None:
    out = io.StringIO()
    files = {0: str(tmp_path / "a.log"), 1: str(tmp_path / "b.log")}
    Path(files[0]).write_text("x\n")
    Path(files[1]).write_text("y\n")
    tail = TailLog("default", files, out, {0: "[rank4]:"})  # rank 1 gets torch's own header
    tee = LogTee.replacing([tail], name="t").start()
    tee.stop()
    assert sorted(out.getvalue().splitlines()) == ["[default1]:y", "[rank4]:x"]
