"""Log-rule evaluation on its own thread, fed through a bounded queue.

The monitor loop, the HTTP server and the worker socket must answer whatever the workers print:
when rules ran on the monitor loop, one slow search froze worker monitoring and the checkpoint
socket and a false hang verdict followed (issue 12). So the loop only reads new log lines and
hands them to a `RuleRunner`; its thread owns the `RuleEngine` and publishes the rule states and
verdict, which the loop picks up on its next pass. RE2 releases the GIL while it searches, so
even a slow search leaves the other threads running.

Order is kept: lines, checkpoint holds and releases go through one queue, each with the
monotonic time it was read, and the engine's timers tick only up to the time of the newest pass
whose lines it has all evaluated, so evaluation that falls behind delays a verdict but never
invents one. The queue is bounded (`QUEUE_MAX_LINES`, `QUEUE_MAX_CHARS`); when it is full the
oldest *lines* are dropped and counted (`RuleReport.dropped`), holds never are, and `submit`
never waits for evaluation. Lines are split and cut (`rule_lines`) before they are queued, so
the bound holds in characters too.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from trainguard.policy.log_rules import RuleEngine, RuleState, Verdict, rule_lines

log = logging.getLogger(__name__)

QUEUE_MAX_LINES = 10_000
"""Most line parts waiting for evaluation; beyond it the oldest are dropped."""
QUEUE_MAX_CHARS = 4 << 20
"""Most characters waiting for evaluation (4 Mi, so at most 16 MiB of text even in UCS-4)."""
IDLE_WAKE_S = 1.0
"""The thread re-checks for close at least this often when nothing arrives."""


@dataclass(frozen=True)
class RuleReport:
    """What the evaluation thread published last."""

    states: dict[str, RuleState]
    verdict: Verdict | None = None
    dropped: int = 0
    """Line parts dropped, unevaluated, because the queue was full."""
    evaluated: int = 0
    """Line parts evaluated."""


@dataclass(frozen=True)
class _Line:
    stream: int
    text: str
    now: float


@dataclass(frozen=True)
class _Hold:
    stream: int | None
    reason: str
    now: float
    begin: bool


@dataclass
class _Queue:
    items: deque[_Line | _Hold] = field(default_factory=deque)
    lines: int = 0
    chars: int = 0
    read_up_to: float | None = None


class RuleRunner:
    """Runs ``engine`` on a daemon thread; the other methods are safe from any thread.

    Args:
        engine: the rules of this start (the runner owns it from now on).
        max_lines: queue bound in line parts.
        max_chars: queue bound in characters.
        start: start the thread (tests pass False and call `step` themselves).
    """

    def __init__(
        self,
        engine: RuleEngine,
        *,
        max_lines: int = QUEUE_MAX_LINES,
        max_chars: int = QUEUE_MAX_CHARS,
        start: bool = True,
    ) -> None:
        self._engine = engine
        self._max_lines, self._max_chars = max_lines, max_chars
        self._cond = threading.Condition()
        self._queue = _Queue()
        self._ticked: float | None = None
        self._dropped = self._evaluated = 0
        self._report = RuleReport(states=engine.states())
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="log-rules", daemon=True)
        if start:
            self._thread.start()

    def submit(self, lines: Iterable[tuple[int, str]], now: float) -> None:
        """Queue ``(stream, line)`` pairs read at ``now`` and let the timers run up to ``now``."""
        parts = [_Line(stream, part, now) for stream, line in lines for part in rule_lines(line)]
        if len(parts) > self._max_lines:  # more than fits at all: drop the oldest right here
            with self._cond:
                self._count_dropped(len(parts) - self._max_lines)
            parts = parts[-self._max_lines :]
        with self._cond:
            queue = self._queue
            queue.items.extend(parts)
            queue.lines += len(parts)
            queue.chars += sum(len(p.text) for p in parts)
            self._trim()
            queue.read_up_to = now
            self._cond.notify()

    def hold(self, stream: int | None, reason: str, now: float, *, begin: bool) -> None:
        """Pause (``begin``) or resume the timers of ``stream`` (all when None), in order."""
        with self._cond:
            self._queue.items.append(_Hold(stream, reason, now, begin))
            self._cond.notify()

    def report(self) -> RuleReport:
        """The latest published states and verdict (never waits for evaluation)."""
        with self._cond:
            return self._report

    def close(self, *, wait: float = 0.0) -> bool:
        """Stop the thread after the search in progress; queued lines are discarded.

        Args:
            wait: seconds to wait for the thread to end (the agent does not wait).

        Returns:
            Whether the thread has ended.
        """
        with self._cond:
            self._closed = True
            self._queue = _Queue()
            self._cond.notify()
        if wait > 0 and self._thread.is_alive():
            self._thread.join(timeout=wait)
        return not self._thread.is_alive()

    def step(self, *, wait: float = 0.0) -> bool:
        """Evaluate everything queued, then tick; False when there was nothing to do.

        Args:
            wait: seconds to wait for work first.
        """
        with self._cond:
            if not self._cond.wait_for(self._has_work, timeout=wait):
                return False
            batch, self._queue = self._queue, _Queue(read_up_to=self._queue.read_up_to)
        for item in batch.items:
            try:
                self._apply(item)
            except Exception:  # one bad item must not end rule evaluation for the run
                log.exception("log-rule evaluation failed on %r", item)
        if batch.read_up_to is not None:
            self._engine.tick(batch.read_up_to)
            self._ticked = batch.read_up_to
        states, verdict = self._engine.states(), self._engine.verdict()
        with self._cond:
            self._report = RuleReport(states, verdict, self._dropped, self._evaluated)
        return True

    # --- internals ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            self.step(wait=IDLE_WAKE_S)

    def _has_work(self) -> bool:
        queue = self._queue
        return self._closed or bool(queue.items) or queue.read_up_to != self._ticked

    def _apply(self, item: _Line | _Hold) -> None:
        if self._closed:
            return
        if isinstance(item, _Line):
            self._engine.feed(item.stream, item.text, item.now)
            self._evaluated += 1
        elif item.begin:
            self._engine.hold(item.stream, item.reason, item.now)
        else:
            self._engine.release(item.stream, item.reason, item.now)

    def _trim(self) -> None:
        """Drop the oldest lines (never holds) until the queue is within its bounds."""
        queue = self._queue
        dropped = 0
        while queue.lines > self._max_lines or queue.chars > self._max_chars:
            index = next(i for i, item in enumerate(queue.items) if isinstance(item, _Line))
            line = queue.items[index]
            del queue.items[index]
            assert isinstance(line, _Line)
            queue.lines -= 1
            queue.chars -= len(line.text)
            dropped += 1
        self._count_dropped(dropped)

    def _count_dropped(self, count: int) -> None:
        if count and self._dropped == 0:
            log.warning("log rules fall behind: dropping the oldest queued lines (counted)")
        self._dropped += count
