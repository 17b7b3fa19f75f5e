"""Goodput accounting: every second of a job lands in exactly one bucket, by the documented rule."""

from __future__ import annotations

import pytest

from trainguard.metrics import Metrics
from trainguard.policy.goodput import BUCKETS, Segment, StepMark, account

T0 = 1_000.0


def mark(step: int, at: float) -> StepMark:
    return StepMark(step=step, time=T0 + at)


def test_a_clean_run_is_boot_training_and_the_tail() -> None:
    segments = [
        Segment(restart=0, started=T0 + 10, first=mark(1, 20), last=mark(100, 120), ended=T0 + 125)
    ]
    result = account(segments, start=T0, end=T0 + 130)
    assert result.boot == pytest.approx(20)  # 10 s of pods + 10 s to the first step
    assert result.useful == pytest.approx(100)
    assert result.other == pytest.approx(10)  # after the last step: final save, exit, clean-up
    assert result.goodput == pytest.approx(100 / 130)
    assert result.steps == 100 and result.redone_steps == 0


def test_a_restart_splits_redone_work_detection_and_restart() -> None:
    # steps 1..50 in 10..60 (1 s a step); a kill at 60.5, seen at 61; resumed from step 40 at 63
    first = Segment(
        restart=0, started=T0 + 5, first=mark(1, 10), last=mark(51, 60), ended=T0 + 61,
        fault="WorkerCrash", stall=2.0,
    )  # fmt: skip
    second = Segment(
        restart=1, started=T0 + 63, resumed_from=40, first=mark(41, 70), last=mark(100, 129),
        ended=T0 + 130,
    )  # fmt: skip
    result = account([second, first], start=T0, end=T0 + 130)
    assert result.redone_steps == 11  # 41..51 ran twice
    assert result.redone == pytest.approx(11 * 50 / 50)
    assert result.checkpoint_stall == pytest.approx(2.0)
    assert result.detection == pytest.approx(1.0)
    assert result.restart == pytest.approx(2.0)
    assert result.boot == pytest.approx(10 + 7)
    assert result.useful == pytest.approx((50 - 11 - 2) + 59)
    assert sum(result.seconds().values()) == pytest.approx(result.wall)
    assert list(result.seconds()) == list(BUCKETS)


def test_a_segment_stopped_before_its_first_step_is_all_boot() -> None:
    segments = [
        Segment(restart=0, started=T0 + 5, ended=T0 + 30, fault="WorkerCrash"),
        Segment(restart=1, started=T0 + 31, first=mark(1, 40), last=mark(10, 49), ended=T0 + 50),
    ]
    result = account(segments, start=T0, end=T0 + 50)
    assert result.boot == pytest.approx(30 + 9)
    assert result.restart == pytest.approx(1)
    assert result.detection == 0 and result.redone == 0
    assert result.useful == pytest.approx(9)


def test_a_resume_from_scratch_redoes_the_whole_segment() -> None:
    segments = [
        Segment(
            restart=0, started=T0, first=mark(1, 1), last=mark(11, 11), ended=T0 + 12, fault="X"
        ),
        Segment(restart=1, started=T0 + 13, resumed_from=None, first=mark(1, 14), last=mark(2, 15)),
    ]
    result = account(segments, start=T0, end=T0 + 15)
    assert result.redone == pytest.approx(10)  # all training of the first segment
    assert result.useful == pytest.approx(1)


def test_a_running_job_is_accounted_up_to_now_and_an_empty_job_is_zero() -> None:
    running = [Segment(restart=0, started=T0 + 2, first=mark(1, 4), last=mark(5, 8))]
    result = account(running, start=T0, end=T0 + 9)
    assert result.useful == pytest.approx(4) and result.other == pytest.approx(1)
    assert account([], start=T0, end=T0).goodput == 0.0
    assert (
        account([], start=T0, end=T0 + 5).boot == 0 and account([], start=T0, end=T0 + 5).other == 5
    )


def test_the_goodput_gauge_is_set_per_job_and_dropped_with_it() -> None:
    metrics = Metrics()
    metrics.job_goodput("default/quickstart", 0.75)
    sample = metrics.registry.get_sample_value(
        "trainguard_job_goodput", {"job": "default/quickstart"}
    )
    assert sample == 0.75
    metrics.forget_job("default/quickstart")
    metrics.forget_job("default/quickstart")  # twice: no error
    assert (
        metrics.registry.get_sample_value("trainguard_job_goodput", {"job": "default/quickstart"})
        is None
    )
