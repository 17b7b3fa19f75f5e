"""Log-monitoring rules: worker log lines and timestamps in, rule states out.

HyperPod's agent watches the log of local rank 0 only and measures its timers in wall time, so
a slow checkpoint save or a stopped worker group looks like a hang. This engine is fed the lines
of *every* local rank (one *stream* each) and measures every timer in *active* time: a stream's
clock stops while it is held (workers stopped, a checkpoint save in progress) and resumes where
it left off. It is pure — the agent passes each line with the monotonic time it read it, and
calls `RuleEngine.tick` to let time-based rules fire — so every edge case is tested with plain
numbers.

Rule fields (the CRD's ``logMonitoringConfiguration`` keys):

- ``logPattern``: lines the rule applies to (a search anywhere in the line, RE2 syntax:
  `trainguard.spec.patterns` says why and what differs from Python's `re`).
- ``expectedStartCutOffInSeconds``: no match on *any* stream within N active seconds of the
  start -> HANGING. A rank that never prints the pattern (only rank 0 logs the loss, say) is
  no alarm once another local rank matched; HyperPod, watching rank 0 only, cannot tell.
- ``expectedRecurringFrequencyInSeconds``: more than N active seconds since a stream's last
  match -> HANGING; only streams that matched before are timed (a rank that stops printing
  what it used to print is the hang signal).
  Before the first match only the start cut-off applies (a slow first step is the start
  cut-off's business, as in HyperPod's canonical JobStart/JobHangingDetection pair).
- ``metricThreshold`` + ``operator``: the first capturing group is parsed as a float (``nan``
  and ``inf`` are values too; ``inf`` compares as IEEE floats do, and ``nan`` breaches every
  operator but ``eq``: a NaN loss or throughput is out of bounds whichever way the rule looks);
  ``value OP threshold`` true on ``metricEvaluationDataPoints`` consecutive matches -> SLOW.
- ``faultOnMatch``: any match -> FAULTED (sticky).
- ``stopPattern``: once seen on a stream, the rule stops evaluating there.

A rule's state is its worst state over all streams: FAULTED > HANGING > SLOW > HEALTHY > WAITING.

What a rule sees of a line is bounded (`rule_lines`): a line is split at carriage returns
(a tqdm progress bar redraws itself with ``\\r`` and ends one 150 kB "line" per epoch; each
redraw is what a terminal shows, so each is evaluated as a line of its own) and each part is cut
to its first `RULE_LINE_MAX_CHARS` characters. With RE2 that bounds the cost of one line.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from trainguard.errors import SpecError, SpecIssue
from trainguard.spec.job import LogMonitoringRule
from trainguard.spec.messages import issues_from_validation
from trainguard.spec.patterns import RuleMatch, RulePattern, compile_rule_pattern
from trainguard.spec.semantics import check_rule

RULES_FIELD = "log_monitoring_configuration"
RULE_LINE_MAX_CHARS = 4096
"""A rule sees at most this many characters of each line (of each ``\\r`` part): the head,
where log prefixes and messages are. Together with `PATTERN_MAX_PROGRAM_SIZE` this bounds one
search (worst case measured: 44 ms for ``[ab]*a[ab]{999}[ab]{990}(!)`` on 4096 random a/b;
a typical rule takes microseconds)."""
REPORTED_LINE_MAX_CHARS = 512
"""The matched line quoted in a verdict is cut to this many characters (it goes into events)."""


class RuleState(StrEnum):
    """State of one rule (HyperPod's log agent names)."""

    WAITING = "WAITING"
    HEALTHY = "HEALTHY"
    SLOW = "SLOW"
    HANGING = "HANGING"
    FAULTED = "FAULTED"


SEVERITY: Mapping[RuleState, int] = {
    RuleState.WAITING: 0,
    RuleState.HEALTHY: 1,
    RuleState.SLOW: 2,
    RuleState.HANGING: 3,
    RuleState.FAULTED: 4,
}
FIRING = frozenset({RuleState.SLOW, RuleState.HANGING, RuleState.FAULTED})

OPERATORS: Mapping[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "eq": operator.eq,
}


@dataclass(frozen=True)
class Rule:
    """A validated, compiled rule."""

    name: str
    pattern: RulePattern
    stop: RulePattern | None = None
    start_cutoff: float | None = None
    recurring: float | None = None
    threshold: float | None = None
    compare: str | None = None
    data_points: int = 1
    fault_on_match: bool = False

    @classmethod
    def from_spec(cls, spec: LogMonitoringRule) -> Rule:
        """Compile a manifest rule (already validated by `check_rule`)."""
        return cls(
            name=spec.name,
            pattern=compile_rule_pattern(spec.log_pattern),
            stop=compile_rule_pattern(spec.stop_pattern) if spec.stop_pattern else None,
            start_cutoff=spec.expected_start_cut_off_in_seconds,
            recurring=spec.expected_recurring_frequency_in_seconds,
            threshold=spec.metric_threshold,
            compare=spec.operator,
            data_points=spec.metric_evaluation_data_points or 1,
            fault_on_match=bool(spec.fault_on_match),
        )

    @property
    def is_metric(self) -> bool:
        """Compares a captured number with a threshold."""
        return self.threshold is not None and self.compare is not None


def parse_rules(raw: Sequence[Any] | None, *, source: str) -> list[Rule]:
    """Validate rule dicts as sent in ``/start`` (CRD keys) and compile them.

    Args:
        raw: the ``log_monitoring_configuration`` list, or None.
        source: names the input in error messages (e.g. ``POST /start``).

    Returns:
        The compiled rules, in order.

    Raises:
        SpecError: every problem found, each with its field path.
    """
    issues: list[SpecIssue] = []
    specs: list[LogMonitoringRule] = []
    for index, item in enumerate(raw or []):
        path = f"{RULES_FIELD}[{index}]"
        try:
            spec = LogMonitoringRule.model_validate(item)
        except ValidationError as exc:
            issues.extend(issues_from_validation(exc, prefix=path))
            continue
        if spec.name in {s.name for s in specs}:
            issues.append(SpecIssue(f"{path}.name", f"duplicate rule name {spec.name!r}"))
        issues.extend(i for i in check_rule(spec, path) if i.severity == "error")
        specs.append(spec)
    if issues:
        raise SpecError(source, issues)
    return [Rule.from_spec(spec) for spec in specs]


class StreamClock:
    """Active time of one stream: runs only while nothing holds it."""

    def __init__(self, now: float) -> None:
        self._total = 0.0
        self._since: float | None = now
        self._holds: set[str] = set()

    def active(self, now: float) -> float:
        """Active seconds since the stream started."""
        running = 0.0 if self._since is None else max(0.0, now - self._since)
        return self._total + running

    def hold(self, reason: str, now: float) -> None:
        """Stop the clock for ``reason`` (holds with different reasons stack)."""
        if not self._holds and self._since is not None:
            self._total = self.active(now)
            self._since = None
        self._holds.add(reason)

    def release(self, reason: str, now: float) -> None:
        """Drop the hold ``reason``; the clock runs again when no hold is left."""
        self._holds.discard(reason)
        if not self._holds and self._since is None:
            self._since = now

    @property
    def held(self) -> bool:
        """Whether the clock is stopped."""
        return bool(self._holds)


@dataclass
class _Track:
    """One rule on one stream."""

    state: RuleState = RuleState.WAITING
    last_match: float | None = None
    breaches: int = 0
    stopped: bool = False
    last_line: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    """The worst firing rule: what the agent reports as its fault."""

    rule: str
    state: RuleState
    stream: int
    line: str | None
    detail: str


@dataclass
class _Stream:
    clock: StreamClock
    tracks: list[_Track] = field(default_factory=list)


class RuleEngine:
    """Evaluates ``rules`` over the lines of several streams (local ranks).

    Args:
        rules: compiled rules.
        streams: stream ids (local ranks).
        now: monotonic seconds at which the streams start (timers count from here).
    """

    def __init__(self, rules: Sequence[Rule], streams: Iterable[int], *, now: float) -> None:
        self.rules = list(rules)
        self._streams = {
            sid: _Stream(StreamClock(now), [_Track() for _ in self.rules]) for sid in streams
        }

    def feed(self, stream: int, line: str, now: float) -> None:
        """Evaluate one log line of ``stream`` read at monotonic time ``now``.

        The line is split and cut as `rule_lines` says; each part counts as a line.
        """
        state = self._stream(stream)
        active = state.clock.active(now)
        for part in rule_lines(line):
            for rule, track in zip(self.rules, state.tracks, strict=True):
                if not track.stopped:
                    _feed(rule, track, part, active)

    def tick(self, now: float) -> None:
        """Let time-based rules fire: call after feeding the lines read up to ``now``."""
        for index, rule in enumerate(self.rules):
            anyone = any(s.tracks[index].last_match is not None for s in self._streams.values())
            for state in self._streams.values():
                track = state.tracks[index]
                if not track.stopped and track.state is not RuleState.FAULTED:
                    _tick(rule, track, state.clock.active(now), anyone_matched=anyone)

    def hold(self, stream: int | None, reason: str, now: float) -> None:
        """Pause the timers of ``stream`` (all streams when None) for ``reason``."""
        for state in self._select(stream):
            state.clock.hold(reason, now)

    def release(self, stream: int | None, reason: str, now: float) -> None:
        """Undo `hold` for ``reason``."""
        for state in self._select(stream):
            state.clock.release(reason, now)

    def states(self) -> dict[str, RuleState]:
        """Each rule's worst state over all streams."""
        result: dict[str, RuleState] = {}
        for index, rule in enumerate(self.rules):
            tracks = [s.tracks[index].state for s in self._streams.values()]
            result[rule.name] = max(tracks, key=SEVERITY.__getitem__, default=RuleState.WAITING)
        return result

    def verdict(self) -> Verdict | None:
        """The most severe firing rule (first rule, lowest stream on ties), or None."""
        best: Verdict | None = None
        for sid in sorted(self._streams):
            for rule, track in zip(self.rules, self._streams[sid].tracks, strict=True):
                if track.state not in FIRING:
                    continue
                if best is None or SEVERITY[track.state] > SEVERITY[best.state]:
                    best = Verdict(rule.name, track.state, sid, track.last_line, track.detail)
        return best

    def _stream(self, stream: int) -> _Stream:
        try:
            return self._streams[stream]
        except KeyError:
            raise ValueError(f"unknown log stream {stream}") from None

    def _select(self, stream: int | None) -> list[_Stream]:
        return list(self._streams.values()) if stream is None else [self._stream(stream)]


def rule_lines(line: str) -> list[str]:
    """What the rules see of one log line: its non-empty ``\\r``-separated parts, in order,
    each cut to its first `RULE_LINE_MAX_CHARS` characters.

    A cut part ends in ``\\n``, a character no log line holds: ``$`` and ``.`` do not match it,
    so the cut never looks like the end of the line (``(a+)+$`` must not match a long line of
    ``a`` that ends in ``!``).
    """
    parts = line.split("\r") if "\r" in line else [line]
    return [_cut(part) for part in parts if part]


def _cut(part: str) -> str:
    return part if len(part) <= RULE_LINE_MAX_CHARS else part[:RULE_LINE_MAX_CHARS] + "\n"


def _feed(rule: Rule, track: _Track, line: str, active: float) -> None:
    if rule.stop is not None and rule.stop.search(line):
        track.stopped = True
        if track.state is RuleState.WAITING:
            track.state = RuleState.HEALTHY
        return
    match = rule.pattern.search(line)
    if match is None:
        return
    track.last_match, track.last_line = active, line[:REPORTED_LINE_MAX_CHARS]
    if track.state is RuleState.FAULTED:
        return
    if rule.fault_on_match:
        track.state, track.detail = RuleState.FAULTED, f"a line matched {rule.pattern.pattern!r}"
        return
    if rule.is_metric:
        _evaluate_metric(rule, track, match)
    else:
        track.state = RuleState.HEALTHY


def _evaluate_metric(rule: Rule, track: _Track, match: RuleMatch) -> None:
    value = _number(match.group(1) if rule.pattern.groups else None)
    if value is None:
        if track.state is RuleState.WAITING:
            track.state = RuleState.HEALTHY
        return
    assert rule.compare is not None and rule.threshold is not None
    if (math.isnan(value) and rule.compare != "eq") or OPERATORS[rule.compare](
        value, rule.threshold
    ):
        track.breaches += 1
    else:
        track.breaches = 0
    if track.breaches >= rule.data_points:
        track.state = RuleState.SLOW
        track.detail = (
            f"{track.breaches} consecutive values {rule.compare} {rule.threshold:g} "
            f"(last {value:g})"
        )
    else:
        track.state = RuleState.HEALTHY


def _tick(rule: Rule, track: _Track, active: float, *, anyone_matched: bool) -> None:
    if track.last_match is None:
        if anyone_matched:
            return
        if rule.start_cutoff is not None and active > rule.start_cutoff:
            track.state = RuleState.HANGING
            track.detail = (
                f"no line matched {rule.pattern.pattern!r} within "
                f"{rule.start_cutoff:g}s of the start"
            )
        return
    gap = active - track.last_match
    if rule.recurring is not None and gap > rule.recurring:
        track.state = RuleState.HANGING
        track.detail = (
            f"no line matched {rule.pattern.pattern!r} for {gap:.1f}s "
            f"(expected every {rule.recurring:g}s)"
        )


def _number(text: str | None) -> float | None:
    """The captured metric as a float; ``nan``/``inf`` included, junk is None."""
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None
