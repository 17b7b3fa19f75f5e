"""`bench.accounting`: lost time split into its parts, and the correctness gate, on hand-written
event logs of two ranks with one fault."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bench.accounting import gate_failures, lost_time, redone_per_rank, restart_gaps
from bench.arms import Events, Trial, role

STEP = 0.5


def _write(directory: Path, records: list[dict[str, Any]]) -> Events:
    directory.mkdir()
    for rank in (0, 1):
        mine = [r for r in records if r.get("only", rank) == rank]
        lines = [json.dumps(r | {"rank": rank}) for r in mine]
        (directory / f"rank{rank}.jsonl").write_text("\n".join(lines) + "\n")
    return Events(directory)


def _run(*, resumed: int | None = 2, final: str = "f") -> list[dict[str, Any]]:
    """Launch at 0; boot until 10; steps 1-3 (save at 2, stall 0.1); death at 12; a new process
    at 14, resumed at 16; step 3 again, then 4; checkpoints drained at 17.5; exit at 20."""
    first = [
        {"t": 10 + STEP * (s - 1), "kind": "step", "step": s, "seconds": STEP} for s in (1, 2, 3)
    ]
    first[1]["stall"] = 0.1
    return [
        {"t": 1.0, "kind": "boot", "phase": "start", "at": 1.0, "attempt": 0},
        {"t": 9.0, "kind": "resume", "step": None, "digest": None, "attempt": 0},
        *[r | {"attempt": 0} for r in first],
        {"t": 10.6, "kind": "saved", "step": 2, "digest": "d2", "attempt": 0},
        {"t": 12.0, "kind": "die", "attempt": 0, "only": 1},  # the victim logs its death
        {"t": 14.0, "kind": "boot", "phase": "start", "at": 14.0, "attempt": 1},
        {"t": 16.0, "kind": "resume", "step": resumed, "digest": "d2", "attempt": 1},
        {"t": 16.5, "kind": "step", "step": 3, "seconds": STEP, "attempt": 1},
        {"t": 17.0, "kind": "step", "step": 4, "seconds": STEP, "attempt": 1},
        {"t": 17.5, "kind": "drained", "attempt": 1},
        {"t": 17.6, "kind": "final", "step": 4, "digest": final, "attempt": 1},
    ]


def test_lost_time_is_split_into_its_parts(tmp_path: Path) -> None:
    events = _write(tmp_path / "events", _run())
    trial = Trial("x", tmp_path / "events", wall_s=20.0, started=0.0)
    lost = lost_time(trial, events, steps=4, reference=STEP)
    assert lost["lost"] == pytest.approx(20.0 - 4 * STEP)
    assert lost["boot"] == pytest.approx(10.0 - STEP)
    assert restart_gaps(events) == [(2.0, 2.0)]
    assert (lost["relaunch"], lost["init"]) == (2.0, 2.0)
    assert lost["redone"] == pytest.approx(STEP)  # step 3, once per rank
    assert lost["stalls"] == pytest.approx(0.1)
    assert (lost["drain"], lost["shutdown"]) == (pytest.approx(0.5), pytest.approx(2.5))
    assert sum(lost[p] for p in lost if p != "lost") == pytest.approx(lost["lost"])
    assert redone_per_rank(events) == {0: 1, 1: 1}


def test_a_correct_run_passes_the_gate(tmp_path: Path) -> None:
    events = _write(tmp_path / "events", _run())
    assert gate_failures(events, {0: "f", 1: "f"}) == []


@pytest.mark.parametrize(
    ("run", "reference", "words"),
    [
        ({"resumed": None}, {0: "f", 1: "f"}, "resumed from nothing after step 2"),
        ({"final": "other"}, {0: "f", 1: "f"}, "fault-free run f"),
    ],
)
def test_the_gate_names_what_went_wrong(
    tmp_path: Path, run: dict[str, Any], reference: dict[int, str], words: str
) -> None:
    events = _write(tmp_path / "events", _run(**run))
    assert any(words in failure for failure in gate_failures(events, reference))


def test_ranks_resuming_different_steps_fail_the_gate(tmp_path: Path) -> None:
    directory = tmp_path / "events"
    directory.mkdir()
    for rank, step in ((0, 2), (1, None)):
        record = {"t": 1.0, "kind": "resume", "step": step, "digest": None, "attempt": 1}
        (directory / f"rank{rank}.jsonl").write_text(json.dumps(record | {"rank": rank}) + "\n")
    assert any("different steps" in f for f in gate_failures(Events(directory), None))


@pytest.mark.parametrize(
    ("cmdline", "part"),
    [
        (["/v/bin/python", "-m", "trainguard", "checkpoint", "serve", "--port", "1"], "mtc"),
        (["/v/bin/python", "/v/bin/trainguard", "run", "job.yaml"], "controller"),
        (["/v/bin/python", "-m", "trainguard.agent.zygote"], "zygote"),
    ],
)
def test_the_overhead_counts_node_mtc_servers_apart_from_the_controller(
    cmdline: list[str], part: str
) -> None:
    """``trainguard run`` starts an MTC server per node: its memory is per node, not the
    controller's."""
    assert role(cmdline) == part
