"""Log-rule patterns: RE2 syntax, checked at validation, matched in time linear in the line.

Rule patterns come from the manifest and run on every worker log line in the agent. Python's
`re` backtracks, so one pattern can cost exponential or quadratic time: ``(a+)+$`` on a
30-character line held the GIL for 60-70 s and ``.*Loss:.*`` on one 150 kB tqdm line for 62 s,
freezing the agent (issue 12). RE2 (the ``google-re2`` bindings) never backtracks: a search
costs at most (line length x compiled program size). So validation compiles every pattern
with RE2, and a pattern RE2 cannot run is refused with RE2's reason rather than run on a
backtracking fallback: backreferences (``\\1``), lookaround (``(?=``, ``(?<=``), ``\\Z`` (RE2
spells it ``\\z``), ``(?x)`` and repetition counts over 1000. Its program size is capped too,
which bounds the cost per character.

RE2 also differs from `re` in meaning for a few patterns that both accept: ``\\d``, ``\\w``,
``\\s`` and ``\\b`` are ASCII-only. Capture groups work as in `re` (leftmost-first), so the first
group of a metric rule still extracts its value.
"""

from __future__ import annotations

import re
from typing import Protocol, cast

import re2

PATTERN_MAX_PROGRAM_SIZE = 2000
"""Largest compiled RE2 program a rule pattern may have (RE2's ``ProgramSize()`` units, about
one instruction per literal character; ``.*Loss:.*`` is 25, ``[\\p{L}\\p{N}]+ loss=(\\S+)`` 1366).
A search costs up to (line length x program size), so this bounds the cost per character."""

PATTERN_MAX_MEM = 8 << 20
"""RE2's memory budget per compiled pattern, in bytes (RE2's default, stated so it is fixed):
the compiled program and its DFA cache; a pattern that does not fit fails to compile."""


class RuleMatch(Protocol):
    """The part of a match the rule engine uses."""

    def group(self, index: int, /) -> str | None:
        """Text of capture group ``index`` (0 = the whole match); None if it did not take part."""


class RulePattern(Protocol):
    """A compiled rule pattern (an RE2 regexp behind the `re`-style API)."""

    @property
    def pattern(self) -> str:
        """The source text."""

    @property
    def groups(self) -> int:
        """Number of capture groups."""

    def search(self, text: str, /) -> RuleMatch | None:
        """The leftmost match anywhere in ``text``, or None."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the reason goes into our error, not to the agent's stderr
    options.max_mem = PATTERN_MAX_MEM
    return options


_OPTIONS = _options()


def compile_rule_pattern(value: str) -> RulePattern:
    """Compile a log-rule pattern with RE2 (cached: the same text compiles once).

    Raises:
        ValueError: RE2 cannot compile it, or its program is too large; the message says why.
    """
    try:
        compiled = re2.compile(value, _OPTIONS)
    except UnicodeEncodeError as exc:
        raise ValueError(f"not valid Unicode text: {exc.reason}") from None
    except re2.error as exc:
        raise ValueError(_refusal(value, _reason(exc))) from None
    size = int(compiled._regexp.ProgramSize())
    if size > PATTERN_MAX_PROGRAM_SIZE:
        raise ValueError(
            f"pattern too complex: its RE2 program has {size} instructions, more than the "
            f"{PATTERN_MAX_PROGRAM_SIZE} allowed (simplify large repetitions or Unicode classes)"
        )
    return cast(RulePattern, compiled)


def _reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else exc
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


def _refusal(value: str, reason: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    except (RecursionError, OverflowError) as exc:
        return f"invalid regular expression: {exc}"
    return (
        f"not supported by RE2, the linear-time engine log rules run on ({reason}): "
        "backreferences, lookaround, \\Z (write \\z), (?x) and repetitions over 1000 "
        "are not available"
    )
