"""Log rules stay linear-time and bounded (issue 12): RE2-only patterns, capped and split lines.

The inputs are the issue's: ``(a+)+$`` on a 30-character line of ``a`` ending in ``!`` (60-70 s
with Python's backtracking `re`) and ``.*Loss:.*`` on one 150 kB tqdm line of ``\\r`` redraws
(62 s). Each evaluation must finish far inside a freeze-sized bound.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from trainguard.errors import SpecError
from trainguard.policy.log_rules import (
    REPORTED_LINE_MAX_CHARS,
    RULE_LINE_MAX_CHARS,
    RuleEngine,
    RuleState,
    parse_rules,
    rule_lines,
)
from trainguard.spec.patterns import PATTERN_MAX_PROGRAM_SIZE, compile_rule_pattern

REDOS_LINE = "a" * 29 + "!"
TQDM_REDRAW = "\r 45%|####5     | 450/1000 [00:10<00:12, 44.12it/s]"
FREEZE_S = 2.0  # the old engine took 16-70 s on these inputs; any freeze blows this bound


def tqdm_line(size: int = 150_000, *, loss_at: int | None = None) -> str:
    redraws = [TQDM_REDRAW] * (size // len(TQDM_REDRAW) + 1)
    if loss_at is not None:
        redraws[loss_at] = f"\r 46%|####6     | 460/1000 [00:10<00:12, Loss: {loss_at}.5]"
    return "".join(redraws)[:size]


def one_rule(**fields: Any) -> RuleEngine:
    body = {"name": "R", "logPattern": ".*Loss:.*"} | fields
    return RuleEngine(parse_rules([body], source="test"), [0], now=0.0)


def timed_feed(engine: RuleEngine, line: str) -> float:
    started = time.perf_counter()
    engine.feed(0, line, 1.0)
    return time.perf_counter() - started


# --- the issue's inputs ------------------------------------------------------------------------


def test_nested_quantifier_on_the_redos_line_is_immediate() -> None:
    engine = one_rule(logPattern="(a+)+$", faultOnMatch=True)
    for line in (REDOS_LINE, "a" * (RULE_LINE_MAX_CHARS * 4) + "!"):
        assert timed_feed(engine, line) < FREEZE_S
    assert engine.states()["R"] is RuleState.WAITING  # no match, as with `re`
    engine.feed(0, "a" * 30, 2.0)
    assert engine.states()["R"] is RuleState.FAULTED


def test_loss_pattern_on_a_150kb_tqdm_line_is_immediate() -> None:
    engine = one_rule(expectedRecurringFrequencyInSeconds=5)
    assert timed_feed(engine, tqdm_line()) < FREEZE_S
    assert engine.states()["R"] is RuleState.WAITING
    assert timed_feed(engine, tqdm_line(loss_at=100)) < FREEZE_S
    assert engine.states()["R"] is RuleState.HEALTHY


def test_each_tqdm_redraw_counts_and_metrics_are_captured_from_it() -> None:
    engine = one_rule(logPattern=r"Loss: ([0-9.]+)", metricThreshold=99, operator="gt")
    engine.feed(0, tqdm_line(loss_at=120), 1.0)
    verdict = engine.verdict()
    assert verdict is not None and verdict.state is RuleState.SLOW
    assert "last 120.5" in verdict.detail and verdict.line is not None
    assert verdict.line.startswith(" 46%") and "\r" not in verdict.line


# --- line cap and split ------------------------------------------------------------------------


def test_rule_lines_split_at_carriage_returns_and_cap_each_part() -> None:
    assert rule_lines("plain") == ["plain"]
    assert rule_lines("") == []
    assert rule_lines("a\rb\r\rc\r") == ["a", "b", "c"]
    long = "x" * (RULE_LINE_MAX_CHARS + 10)
    assert rule_lines(f"{long}\ry") == ["x" * RULE_LINE_MAX_CHARS + "\n", "y"]


def test_a_rule_sees_only_the_head_of_a_long_line() -> None:
    engine = one_rule(faultOnMatch=True)
    engine.feed(0, "x" * RULE_LINE_MAX_CHARS + " Loss: 1", 1.0)
    assert engine.states()["R"] is RuleState.WAITING
    engine.feed(0, "Loss: 1 " + "x" * 100_000, 2.0)
    verdict = engine.verdict()
    assert verdict is not None and verdict.line is not None
    assert len(verdict.line) == REPORTED_LINE_MAX_CHARS


# --- patterns refused at validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "pattern", "words"),
    [
        ("logPattern", r"(\w+) \1", "backreferences"),
        ("logPattern", r"Loss(?=: )", "lookaround"),
        ("stopPattern", r"(?<!not )done", "(?<!"),
        ("logPattern", r"done\Z", "\\z"),
        ("logPattern", "(", "invalid regular expression"),
        ("logPattern", "((?:a|b|ab|ba)?){0,999}Z", f"more than the {PATTERN_MAX_PROGRAM_SIZE}"),
        ("logPattern", "Loss\ud800", "not valid Unicode"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_naming_the_field(
    field: str, pattern: str, words: str
) -> None:
    body = {"name": "A", "logPattern": "Loss", "faultOnMatch": True, field: pattern}
    with pytest.raises(SpecError) as caught:
        parse_rules([body], source="POST /start")
    (issue,) = caught.value.issues
    assert issue.path == f"log_monitoring_configuration[0].{field}"
    assert words in issue.message


def test_python_syntax_re2_shares_still_compiles_with_groups() -> None:
    for pattern, groups in (
        (r".*Loss: ([0-9.eE+-]+|nan|inf).*", 1),
        (r"(?i)cuda error|nccl (timeout|error)", 1),
        (r"(?P<loss>\d+\.\d+)", 1),
        (r"\d{4}-\d{2}-\d{2}", 0),
    ):
        assert compile_rule_pattern(pattern).groups == groups
