"""The agent's timeline: step stamps from real log lines, saves, the file and the status facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainguard.agent import timeline as timeline_module
from trainguard.agent.protocol import PROGRESS_PREFIX
from trainguard.agent.timeline import Timeline, step_of
from trainguard.testing import FakeClock


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("line", "step"),
    [
        ("[rank 0] Step: 12 Loss: 0.5", 12),
        ("epoch 1 step=7 loss=3", 7),
        ("step 30/400 | loss 1.0", 30),
        ("[rank 0] starting at step 11 (resumed: 10)", None),
        ("no number here", None),
        ("x" * 100_000 + " Step: 3", 3),
    ],
)
def test_step_lines(line: str, step: int | None) -> None:
    assert step_of(line) == step


def test_steps_are_throttled_and_the_newest_is_written_at_stop(tmp_path: Path) -> None:
    clock, path = FakeClock(), tmp_path / "timeline.jsonl"
    timeline = Timeline(str(path), pod="p-0", clock=clock)
    timeline.started(restart=2, ranks=[4, 5])
    for step in range(1, 31):
        timeline.lines(
            [(0, f"[rank 4] Step: {step} Loss: 1"), (1, f"[rank 5] Step: {step} Loss: 1")]
        )
        clock.advance(0.1)
    timeline.stopped()
    written = records(path)
    steps = [(r["rank"], r["step"]) for r in written if r["kind"] == "step"]
    assert (4, 1) in steps and (5, 1) in steps
    assert (4, 30) in steps and (5, 30) in steps  # flushed at stop
    assert len(steps) < 10  # not one record per line
    assert {r["restart"] for r in written} == {2}
    assert written[0]["kind"] == "start" and written[-1]["kind"] == "stop"


def test_saves_record_their_stall_and_progress_carries_the_newest_common_step(
    tmp_path: Path,
) -> None:
    clock, path = FakeClock(), tmp_path / "timeline.jsonl"
    timeline = Timeline(str(path), pod="p-0", clock=clock)
    timeline.started(restart=0, ranks=[0, 1])
    timeline.lines([(0, "Step: 9")])
    assert timeline.merge(None) is None  # rank 1 has not logged a step yet
    timeline.lines([(1, "Step: 8")])
    timeline.save(0, step=10, begin=True)
    clock.advance(0.25)
    timeline.save(0, step=10, begin=False)
    held = {PROGRESS_PREFIX: {"progressCount": 5, "steps": [5]}}
    merged = timeline.merge(held)
    assert merged is not None
    assert merged[PROGRESS_PREFIX]["step"] == 8 and merged[PROGRESS_PREFIX]["steps"] == [5]
    save = next(r for r in records(path) if r["kind"] == "save")
    assert save["step"] == 10 and save["seconds"] == pytest.approx(0.25)
    timeline.close()


def test_a_new_pod_truncates_and_the_file_stops_growing_at_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "timeline.jsonl"
    path.write_text('{"time": 1, "kind": "step", "rank": 0, "step": 999}\n')
    monkeypatch.setattr(timeline_module, "MAX_TIMELINE_BYTES", 2_000)
    clock = FakeClock()
    timeline = Timeline(str(path), pod="p-0", clock=clock)
    timeline.started(restart=0, ranks=[0])
    for step in range(1, 500):
        timeline.lines([(0, f"Step: {step}")])
        clock.advance(2.0)
    timeline.close()
    assert path.stat().st_size < 2_200
    assert all(r.get("step") != 999 for r in records(path))


def test_no_file_without_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRAINGUARD_TIMELINE_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    timeline = Timeline.from_env(pod="p", clock=FakeClock())
    timeline.started(restart=0, ranks=[0])
    timeline.lines([(0, "Step: 1")])
    assert list(tmp_path.iterdir()) == []
    assert timeline.merge(None) is not None


def test_steps_reported_over_the_socket_are_stamped_like_log_lines(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "timeline.jsonl"
    timeline = Timeline(str(path), pod="p", clock=clock)
    timeline.started(restart=0, ranks=[4, 5])
    timeline.step(0, 7)
    timeline.step(1, 6)
    merged = timeline.merge(None)
    timeline.close()
    assert merged is not None and merged[PROGRESS_PREFIX]["step"] == 6
    steps = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["rank"], r["step"]) for r in steps if r["kind"] == "step"] == [(4, 7), (5, 6)]
