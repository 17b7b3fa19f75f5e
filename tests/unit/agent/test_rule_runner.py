"""`RuleRunner`: rule evaluation off the monitor loop, ordered, bounded, never blocking.

Most tests call `step` by hand (no thread) with explicit times; the last ones run the real
thread against evaluation the test holds up (`_StuckEngine`, so falling behind does not depend
on this machine's load) and made slow for real (a DFA-hostile pattern RE2 accepts).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from trainguard.agent.rule_runner import RuleReport, RuleRunner
from trainguard.policy.log_rules import RuleEngine, RuleState, parse_rules

HANG = {"name": "Hang", "logPattern": "Loss: ", "expectedRecurringFrequencyInSeconds": 2}
METRIC = {"name": "High", "logPattern": r"Loss: ([0-9.]+)", "metricThreshold": 9, "operator": "gt"}
# RE2 accepts it (program size 1998 < 2000) but cannot use its DFA on random a/b text:
# about 40 ms per 4096-character line here, a real slow evaluation.
SLOW = {"name": "Slow", "logPattern": r"[ab]*a[ab]{999}[ab]{990}(!)", "faultOnMatch": True}


def runner(*bodies: dict[str, Any], streams: int = 1, **options: Any) -> RuleRunner:
    engine = RuleEngine(parse_rules(list(bodies), source="test"), range(streams), now=0.0)
    return RuleRunner(engine, **options)


def test_lines_are_judged_at_the_time_they_were_read_not_evaluated() -> None:
    rules = runner(HANG, start=False)
    for second in range(1, 11):  # evaluation is 10 s behind: nothing ran yet
        rules.submit([(0, f"Step: {second} Loss: 0.5")], float(second))
    assert rules.report().states == {"Hang": RuleState.WAITING}
    assert rules.step() is True
    assert rules.report().states == {"Hang": RuleState.HEALTHY}
    assert rules.report().evaluated == 10
    rules.submit([], 12.5)  # then the worker really stops printing
    rules.step()
    verdict = rules.report().verdict
    assert verdict is not None and verdict.state is RuleState.HANGING
    assert rules.step() is False  # nothing new


def test_holds_apply_in_order_with_the_lines() -> None:
    rules = runner(HANG, start=False)
    rules.submit([(0, "Loss: 1")], 1.0)
    rules.hold(0, "checkpoint", 1.5, begin=True)
    rules.submit([], 30.0)  # a long save: its time does not count
    rules.hold(0, "checkpoint", 30.0, begin=False)
    rules.submit([(0, "Loss: 2")], 31.0)
    rules.step()
    assert rules.report().verdict is None
    assert rules.report().states == {"Hang": RuleState.HEALTHY}


def test_a_full_queue_drops_the_oldest_lines_and_counts_them_but_keeps_holds() -> None:
    rules = runner(METRIC, HANG, max_lines=4, start=False)
    rules.hold(0, "checkpoint", 0.5, begin=True)
    rules.submit([(0, f"Loss: {n}") for n in range(1, 4)], 1.0)
    rules.submit([(0, f"Loss: {n}\rLoss: {n}.5") for n in (20, 1)], 2.0)  # 4 parts
    rules.submit([], 100.0)  # 98 s later: still held
    rules.step()
    report = rules.report()
    assert (report.dropped, report.evaluated) == (3, 4)
    assert report.verdict is None  # 20 and 20.5 breached, then 1 and 1.5 reset the count
    assert report.states == {"High": RuleState.HEALTHY, "Hang": RuleState.HEALTHY}


def test_a_batch_larger_than_the_queue_keeps_its_newest_lines() -> None:
    rules = runner(METRIC, max_lines=3, start=False)
    rules.submit([(0, f"Loss: {n}") for n in (50, 60, 1, 2, 99)], 1.0)
    rules.step()
    report = rules.report()
    assert (report.dropped, report.evaluated) == (2, 3)
    assert report.verdict is not None and "last 99" in report.verdict.detail


def test_the_queue_is_bounded_in_characters_too() -> None:
    rules = runner(METRIC, max_chars=10_000, start=False)
    rules.submit([(0, "x" * 4000) for _ in range(5)], 1.0)  # 5 x 4000 > 10_000
    rules.step()
    assert (rules.report().dropped, rules.report().evaluated) == (3, 2)


def test_slow_evaluation_drops_lines_but_judges_them_at_read_time() -> None:
    """Evaluation falls behind because the test holds it (not because this machine happens
    to be slow: under load the old timed loop let 2 s of read time pass between surviving
    lines and saw a hang), then runs a real slow rule on what the bounded queue kept."""
    rng = random.Random(7)
    slow_line = "".join(rng.choice("ab") for _ in range(4096))
    engine = _StuckEngine(parse_rules([SLOW, HANG], source="test"), range(1), now=0.0)
    rules = RuleRunner(engine, max_lines=5)
    one_pass = [(0, slow_line), (0, slow_line), (0, "Loss: 1")]
    try:
        rules.submit(one_pass, 0.05)
        assert engine.entered.wait(10)  # the thread holds the first pass, stuck in evaluation
        for index in range(2, 21):  # 19 more passes read while it is stuck: 57 lines, 5 kept
            rules.submit(one_pass, index * 0.05)
        engine.release_feed.set()
        report = _wait_for_evaluated(rules, 3 + 5)
        assert report.dropped == 57 - 5  # evaluation fell behind: the oldest lines went
        assert report.states["Hang"] is RuleState.HEALTHY  # judged at read time (1.0 s) ...
        assert report.verdict is None  # ... so no false hang, however late they were judged
    finally:
        rules.close()


def _wait_for_evaluated(rules: RuleRunner, count: int) -> RuleReport:
    deadline = time.monotonic() + 60
    while (report := rules.report()).evaluated < count:
        assert time.monotonic() < deadline, f"only {report.evaluated} of {count} evaluated"
        time.sleep(0.01)
    return report


class _StuckEngine(RuleEngine):
    """An engine whose evaluation blocks until released: as slow as evaluation can get."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered, self.release_feed = threading.Event(), threading.Event()

    def feed(self, stream: int, line: str, now: float) -> None:
        self.entered.set()
        self.release_feed.wait()
        super().feed(stream, line, now)


def test_submit_hold_and_report_never_wait_for_evaluation() -> None:
    engine = _StuckEngine(parse_rules([HANG], source="test"), range(1), now=0.0)
    rules = RuleRunner(engine, max_lines=10)
    try:
        rules.submit([(0, "Loss: 1")], 1.0)
        assert engine.entered.wait(10)  # the rule thread is stuck inside an evaluation

        def producer() -> None:
            for second in range(2, 202):
                rules.submit([(0, "Loss: 1")] * 5, float(second))
                rules.hold(0, "checkpoint", float(second), begin=second % 2 == 0)
                rules.report()

        thread = threading.Thread(target=producer)
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive()  # the agent's loop went on while evaluation was stuck
        assert rules.report().verdict is None
    finally:
        engine.release_feed.set()
        rules.close(wait=5.0)
    assert rules.report().dropped > 0  # the queue stayed bounded meanwhile


def test_close_stops_the_thread() -> None:
    rules = runner(HANG)
    rules.submit([(0, "Loss: 1")], 1.0)
    assert any(t.name == "log-rules" for t in threading.enumerate())
    assert rules.close(wait=5.0) is True
