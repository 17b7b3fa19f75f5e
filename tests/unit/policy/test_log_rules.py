"""The log-rule engine over every rule field and edge case, driven by a fake clock."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from trainguard.errors import SpecError
from trainguard.policy.log_rules import Rule, RuleEngine, RuleState, StreamClock, parse_rules
from trainguard.testing import FakeClock

LOSS = r"Loss: ([-+0-9.eEnaifNAIF]+)"


def rule(**fields: Any) -> Rule:
    body = {"name": "R", "logPattern": ".*Loss:.*"} | fields
    return parse_rules([body], source="test")[0]


def engine(clock: FakeClock, *rules: Rule, streams: tuple[int, ...] = (0,)) -> RuleEngine:
    return RuleEngine(list(rules), streams, now=clock.monotonic())


def run(eng: RuleEngine, clock: FakeClock, seconds: float, line: str | None, *, stream: int = 0):
    clock.advance(seconds)
    if line is not None:
        eng.feed(stream, line, clock.monotonic())
    eng.tick(clock.monotonic())
    return eng.states()["R"]


# --- parsing -----------------------------------------------------------------------------------


def test_parse_accepts_crd_keys_and_fractional_threshold() -> None:
    (parsed,) = parse_rules(
        [
            {
                "name": "LossHigh",
                "logPattern": LOSS,
                "stopPattern": "done",
                "expectedStartCutOffInSeconds": 240,
                "expectedRecurringFrequencyInSeconds": 600,
                "metricThreshold": 0.5,
                "operator": "gt",
                "metricEvaluationDataPoints": 3,
                "faultOnMatch": False,
            }
        ],
        source="POST /start",
    )
    assert (parsed.name, parsed.threshold, parsed.compare, parsed.data_points) == (
        "LossHigh",
        0.5,
        "gt",
        3,
    )
    assert (parsed.start_cutoff, parsed.recurring) == (240, 600)
    assert parsed.stop is not None and parsed.stop.pattern == "done"


def test_parse_empty_and_none() -> None:
    assert parse_rules(None, source="x") == []
    assert parse_rules([], source="x") == []


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        ({"name": "A", "logPattern": "("}, "log_monitoring_configuration[0].logPattern", "regular"),
        ({"name": "A"}, "log_monitoring_configuration[0].logPattern", "required"),
        (
            {"name": "A", "logPattern": "Loss", "metricThreshold": 1, "operator": "gt"},
            "log_monitoring_configuration[0].logPattern",
            "capturing group",
        ),
        (
            {"name": "A", "logPattern": LOSS, "metricThreshold": 1},
            "log_monitoring_configuration[0].operator",
            "required",
        ),
        (
            {"name": "A", "logPattern": LOSS, "metricThreshold": 1, "operator": "bigger"},
            "log_monitoring_configuration[0].operator",
            "one of",
        ),
        (
            {"name": "A", "logPattern": "x", "expectedStartCutOffInSeconds": 0},
            "log_monitoring_configuration[0].expectedStartCutOffInSeconds",
            "at least 1",
        ),
        (
            {"name": "bad name!", "logPattern": "x"},
            "log_monitoring_configuration[0].name",
            "letters",
        ),
    ],
)
def test_parse_errors_name_the_field(body: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_rules([body], source="POST /start")
    issue = caught.value.issues[0]
    assert issue.path == path
    assert words in issue.message
    assert str(caught.value).startswith("POST /start: ")


def test_parse_rejects_duplicate_names_and_reports_all() -> None:
    with pytest.raises(SpecError) as caught:
        parse_rules(
            [{"name": "A", "logPattern": "x"}, {"name": "A", "logPattern": "y"}, "not a rule"],
            source="s",
        )
    paths = [i.path for i in caught.value.issues]
    assert paths == ["log_monitoring_configuration[1].name", "log_monitoring_configuration[2]"]


# --- expectedStartCutOffInSeconds --------------------------------------------------------------


def test_start_cutoff_fires_only_after_the_cutoff() -> None:
    clock = FakeClock()
    eng = engine(clock, rule(expectedStartCutOffInSeconds=10))
    assert run(eng, clock, 5, "warming up") is RuleState.WAITING
    assert run(eng, clock, 5, None) is RuleState.WAITING  # exactly at the cut-off: not yet
    assert run(eng, clock, 0.01, None) is RuleState.HANGING
    verdict = eng.verdict()
    assert verdict is not None and verdict.rule == "R" and verdict.stream == 0
    assert "within 10s" in verdict.detail


def test_start_cutoff_satisfied_by_a_match() -> None:
    clock = FakeClock()
    eng = engine(clock, rule(expectedStartCutOffInSeconds=10))
    assert run(eng, clock, 9, "Step 1 Loss: 2.0") is RuleState.HEALTHY
    assert run(eng, clock, 1000, None) is RuleState.HEALTHY
    assert eng.verdict() is None


# --- expectedRecurringFrequencyInSeconds -------------------------------------------------------


def test_recurring_gap_fires_and_matches_reset_it() -> None:
    clock = FakeClock()
    eng = engine(clock, rule(expectedRecurringFrequencyInSeconds=10))
    assert run(eng, clock, 1, "Loss: 1") is RuleState.HEALTHY
    for _ in range(5):
        assert run(eng, clock, 9, "Loss: 1") is RuleState.HEALTHY
    assert run(eng, clock, 10, None) is RuleState.HEALTHY
    assert run(eng, clock, 0.5, "unrelated line") is RuleState.HANGING
    verdict = eng.verdict()
    assert (
        verdict is not None and verdict.line == "Loss: 1" and "expected every 10s" in verdict.detail
    )
    assert run(eng, clock, 1, "Loss: 1") is RuleState.HEALTHY  # a late line heals the rule


def test_recurring_alone_waits_for_the_first_match() -> None:
    clock = FakeClock()
    eng = engine(clock, rule(expectedRecurringFrequencyInSeconds=10))
    assert run(eng, clock, 10_000, None) is RuleState.WAITING


def test_cutoff_and_recurring_on_one_rule() -> None:
    clock = FakeClock()
    eng = engine(
        clock, rule(expectedStartCutOffInSeconds=100, expectedRecurringFrequencyInSeconds=5)
    )
    assert run(eng, clock, 90, "Loss: 1") is RuleState.HEALTHY  # slow first step is fine
    assert run(eng, clock, 5.5, None) is RuleState.HANGING


# --- metric rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "threshold", "value", "breach"),
    [
        ("gt", 0.5, "0.6", True),
        ("gt", 0.5, "0.5", False),
        ("gteq", 0.5, "0.5", True),
        ("gteq", 0.5, "0.49", False),
        ("lt", 0.5, "0.4", True),
        ("lt", 0.5, "0.5", False),
        ("lteq", 0.5, "0.5", True),
        ("lteq", 0.5, "0.51", False),
        ("eq", 2, "2.0", True),
        ("eq", 2, "2.5", False),
        ("gt", 1e6, "inf", True),
        ("lt", -1e6, "-inf", True),
        ("gt", 0.5, "nan", True),
        ("lt", 0.5, "NaN", True),
        ("eq", 0.5, "nan", False),
        ("gt", 10, "1e3", True),
    ],
)
def test_metric_operators(op: str, threshold: float, value: str, breach: bool) -> None:
    clock = FakeClock()
    eng = engine(clock, rule(logPattern=LOSS, metricThreshold=threshold, operator=op))
    state = run(eng, clock, 1, f"step 3 Loss: {value}")
    assert state is (RuleState.SLOW if breach else RuleState.HEALTHY)


def test_metric_needs_consecutive_data_points() -> None:
    clock = FakeClock()
    eng = engine(
        clock,
        rule(logPattern=LOSS, metricThreshold=0.5, operator="gt", metricEvaluationDataPoints=3),
    )
    assert run(eng, clock, 1, "Loss: 0.9") is RuleState.HEALTHY
    assert run(eng, clock, 1, "Loss: 0.9") is RuleState.HEALTHY
    assert run(eng, clock, 1, "Loss: 0.1") is RuleState.HEALTHY  # breaks the streak
    assert run(eng, clock, 1, "Loss: 0.9") is RuleState.HEALTHY
    assert run(eng, clock, 1, "Loss: 0.9") is RuleState.HEALTHY
    assert run(eng, clock, 1, "Loss: 0.1") is RuleState.HEALTHY  # breaks the streak again
    assert run(eng, clock, 1, "Loss: nan") is RuleState.HEALTHY  # NaN is a breach: 1 of 3
    run(eng, clock, 1, "Loss: 0.9")
    assert run(eng, clock, 1, "Loss: 0.9") is RuleState.SLOW
    verdict = eng.verdict()
    assert verdict is not None and "3 consecutive values gt 0.5" in verdict.detail


def test_metric_capture_that_is_not_a_number_is_no_data_point() -> None:
    clock = FakeClock()
    eng = engine(
        clock,
        rule(logPattern=r"Loss: (\S+)?", metricThreshold=1, operator="gt"),
    )
    assert run(eng, clock, 1, "Loss: abc") is RuleState.HEALTHY
    assert run(eng, clock, 1, "Loss: ") is RuleState.HEALTHY
    assert run(eng, clock, 1, "Loss: 7") is RuleState.SLOW


def test_metric_rule_with_recurring_timer() -> None:
    clock = FakeClock()
    eng = engine(
        clock,
        rule(
            logPattern=LOSS, metricThreshold=5, operator="gt", expectedRecurringFrequencyInSeconds=3
        ),
    )
    assert run(eng, clock, 1, "Loss: 1") is RuleState.HEALTHY
    assert run(eng, clock, 4, None) is RuleState.HANGING


# --- faultOnMatch and stopPattern --------------------------------------------------------------


def test_fault_on_match_is_sticky() -> None:
    clock = FakeClock()
    eng = engine(clock, rule(logPattern="CUDA error", faultOnMatch=True))
    assert run(eng, clock, 1, "all fine") is RuleState.WAITING
    assert (
        run(eng, clock, 1, "RuntimeError: CUDA error: an illegal memory access")
        is RuleState.FAULTED
    )
    assert run(eng, clock, 1, "all fine again") is RuleState.FAULTED
    verdict = eng.verdict()
    assert verdict is not None and verdict.line is not None and "illegal memory" in verdict.line


def test_stop_pattern_deactivates_the_rule() -> None:
    clock = FakeClock()
    eng = engine(clock, rule(expectedRecurringFrequencyInSeconds=5, stopPattern="Training done"))
    assert run(eng, clock, 1, "Loss: 1") is RuleState.HEALTHY
    assert run(eng, clock, 1, "Training done") is RuleState.HEALTHY
    assert run(eng, clock, 1000, "Loss: 1") is RuleState.HEALTHY
    assert eng.verdict() is None


def test_stop_pattern_before_any_match_stops_the_cutoff() -> None:
    clock = FakeClock()
    eng = engine(clock, rule(expectedStartCutOffInSeconds=5, stopPattern="skip monitoring"))
    assert run(eng, clock, 1, "skip monitoring") is RuleState.HEALTHY
    assert run(eng, clock, 100, None) is RuleState.HEALTHY


# --- streams and holds -------------------------------------------------------------------------


def test_every_stream_is_watched() -> None:
    clock = FakeClock()
    eng = engine(clock, rule(expectedRecurringFrequencyInSeconds=5), streams=(0, 1))
    run(eng, clock, 1, "Loss: 1", stream=0)
    run(eng, clock, 0, "Loss: 1", stream=1)
    for _ in range(3):  # rank 0 keeps printing, rank 1 went silent
        state = run(eng, clock, 2, "Loss: 1", stream=0)
    assert state is RuleState.HANGING
    verdict = eng.verdict()
    assert verdict is not None and verdict.stream == 1


def test_checkpoint_hold_pauses_only_that_stream() -> None:
    clock = FakeClock()
    eng = engine(clock, rule(expectedRecurringFrequencyInSeconds=5), streams=(0, 1))
    for stream in (0, 1):
        eng.feed(stream, "Loss: 1", clock.monotonic())
    eng.hold(0, "checkpoint", clock.monotonic())
    clock.advance(100)  # rank 0 saves for 100 s; rank 1 is silent for 100 s
    eng.tick(clock.monotonic())
    verdict = eng.verdict()
    assert verdict is not None and verdict.stream == 1


def test_released_hold_resumes_where_the_clock_stopped() -> None:
    clock = FakeClock()
    eng = engine(clock, rule(expectedRecurringFrequencyInSeconds=5))
    eng.feed(0, "Loss: 1", clock.monotonic())
    clock.advance(2)
    eng.hold(0, "checkpoint", clock.monotonic())
    clock.advance(100)
    eng.release(0, "checkpoint", clock.monotonic())
    clock.advance(2.9)
    eng.tick(clock.monotonic())
    assert eng.states()["R"] is RuleState.HEALTHY
    clock.advance(0.2)
    eng.tick(clock.monotonic())
    assert eng.states()["R"] is RuleState.HANGING


def test_holds_stack_and_hold_all() -> None:
    clock = StreamClock(now=0.0)
    clock.hold("checkpoint", 1.0)
    clock.hold("stopped", 2.0)
    clock.release("checkpoint", 3.0)
    assert clock.held and clock.active(50.0) == 1.0
    clock.release("stopped", 50.0)
    assert not clock.held and clock.active(52.0) == 3.0
    fake = FakeClock()
    eng = engine(fake, rule(expectedStartCutOffInSeconds=5), streams=(0, 1, 2))
    eng.hold(None, "stopped", fake.monotonic())
    fake.advance(60)
    eng.tick(fake.monotonic())
    assert eng.states()["R"] is RuleState.WAITING


def test_unknown_stream_is_an_error() -> None:
    eng = RuleEngine([rule()], (0,), now=0.0)
    with pytest.raises(ValueError, match="unknown log stream 3"):
        eng.feed(3, "x", 1.0)


def test_verdict_prefers_the_most_severe_rule() -> None:
    clock = FakeClock()
    slow = rule(name="Slow", logPattern=LOSS, metricThreshold=0, operator="gt")
    hang = rule(name="Hang", logPattern="heartbeat", expectedStartCutOffInSeconds=1)
    fault = rule(name="Fault", logPattern="NCCL error", faultOnMatch=True)
    eng = engine(clock, slow, hang, fault)
    clock.advance(2)
    eng.feed(0, "Loss: 3", clock.monotonic())
    eng.tick(clock.monotonic())
    verdict = eng.verdict()
    assert verdict is not None and (verdict.rule, verdict.state) == ("Hang", RuleState.HANGING)
    eng.feed(0, "NCCL error: unhandled", clock.monotonic())
    verdict = eng.verdict()
    assert verdict is not None and verdict.rule == "Fault"
    assert eng.states() == {
        "Slow": RuleState.SLOW,
        "Hang": RuleState.HANGING,
        "Fault": RuleState.FAULTED,
    }


# --- soak --------------------------------------------------------------------------------------


def test_healthy_soak_has_no_false_alarms() -> None:
    """Slow first step, jittery steps, checkpoint saves longer than the recurring limit."""
    rng = random.Random(7)
    clock = FakeClock()
    rules = parse_rules(
        [
            {"name": "JobStart", "logPattern": ".*Loss:.*", "expectedStartCutOffInSeconds": 240},
            {
                "name": "JobHangingDetection",
                "logPattern": ".*Loss:.*",
                "expectedRecurringFrequencyInSeconds": 60,
            },
            {
                "name": "LossDiverged",
                "logPattern": r"Loss: (\S+)",
                "metricThreshold": 10,
                "operator": "gt",
                "metricEvaluationDataPoints": 3,
            },
        ],
        source="soak",
    )
    ranks = (0, 1, 2, 3)
    eng = RuleEngine(rules, ranks, now=clock.monotonic())
    clock.advance(230)  # first step takes almost the whole cut-off
    loss = 5.0
    for step in range(1, 5001):
        for rank in ranks:
            if rng.random() < 0.3:
                eng.feed(rank, f"[rank {rank}] some other log line", clock.monotonic())
            eng.feed(rank, f"[rank {rank}] Step: {step} Loss: {loss:.4f}", clock.monotonic())
        if step % 500 == 0:
            # Every rank saves, each finishing at its own time; the agent holds all streams
            # while any rank saves (a rank done early waits for the others in a collective).
            for rank in ranks:
                eng.hold(None, f"checkpoint:{rank}", clock.monotonic())
            for rank in ranks:
                clock.advance(rng.uniform(1, 150))
                eng.tick(clock.monotonic())
                eng.release(None, f"checkpoint:{rank}", clock.monotonic())
        loss = max(0.01, loss * 0.999 + rng.uniform(-0.05, 0.05))
        if rng.random() < 0.01:
            loss = math.nan if rng.random() < 0.5 else 50.0  # one spike never makes 3 in a row
        clock.advance(rng.uniform(0.5, 55))
        eng.tick(clock.monotonic())
        assert eng.verdict() is None, f"false alarm at step {step}: {eng.verdict()}"
        if math.isnan(loss) or loss > 10:
            loss = 1.0
    assert set(eng.states().values()) == {RuleState.HEALTHY}


# --- ranks that never print the pattern ---------------------------------------------------------


def test_a_rank_that_never_matches_is_no_start_cutoff_alarm_once_another_did() -> None:
    clock = FakeClock()
    both = rule(expectedStartCutOffInSeconds=10, expectedRecurringFrequencyInSeconds=5)
    eng = engine(clock, both, streams=(0, 1))
    for _ in range(20):  # only rank 0 logs the loss; rank 1 prints nothing at all
        state = run(eng, clock, 2, "Loss: 1", stream=0)
    assert state is RuleState.HEALTHY
    assert eng.verdict() is None


def test_start_cutoff_fires_when_no_rank_matched() -> None:
    clock = FakeClock()
    eng = engine(clock, rule(expectedStartCutOffInSeconds=10), streams=(0, 1))
    assert run(eng, clock, 9, "warming up", stream=1) is RuleState.WAITING
    assert run(eng, clock, 2, None) is RuleState.HANGING
    verdict = eng.verdict()
    assert verdict is not None and verdict.stream == 0 and "within 10s" in verdict.detail


def test_start_cutoff_counts_active_time_per_rank() -> None:
    clock = FakeClock()
    eng = engine(clock, rule(expectedStartCutOffInSeconds=10), streams=(0, 1))
    eng.hold(None, "stopped", clock.monotonic())
    assert run(eng, clock, 60, None) is RuleState.WAITING  # workers stopped: no time passes
    eng.release(None, "stopped", clock.monotonic())
    assert run(eng, clock, 9, None) is RuleState.WAITING
    assert run(eng, clock, 2, None) is RuleState.HANGING


def test_rank_zero_only_loss_soak_has_no_false_alarms() -> None:
    """HyperPod's canonical rules while only rank 0 prints the loss, with long saves."""
    rng = random.Random(11)
    clock = FakeClock()
    rules = parse_rules(
        [
            {"name": "JobStart", "logPattern": ".*Loss:.*", "expectedStartCutOffInSeconds": 240},
            {"name": "Hang", "logPattern": ".*Loss:.*", "expectedRecurringFrequencyInSeconds": 60},
        ],
        source="soak",
    )
    eng = RuleEngine(rules, (0, 1, 2, 3), now=clock.monotonic())
    clock.advance(200)
    for step in range(1, 3001):
        eng.feed(0, f"Step: {step} Loss: 0.5", clock.monotonic())
        for rank in (1, 2, 3):
            if rng.random() < 0.2:
                eng.feed(rank, "data loader: prefetching", clock.monotonic())
        if step % 300 == 0:
            eng.hold(0, "checkpoint", clock.monotonic())
            clock.advance(rng.uniform(60, 400))  # saves longer than the recurring limit
            eng.tick(clock.monotonic())
            eng.release(0, "checkpoint", clock.monotonic())
        clock.advance(rng.uniform(0.5, 50))
        eng.tick(clock.monotonic())
        assert eng.verdict() is None, f"false alarm at step {step}: {eng.verdict()}"
