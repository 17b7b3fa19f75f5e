"""Kubernetes' human-readable durations (``5m30s``, ``3h``, ``2d4h``) for table cells.

kubectl's ``AGE`` and ``LAST SEEN`` columns come from the server as text built by apimachinery's
``duration.HumanDuration``; this module reproduces its rounding so a table from the fake reads like
one from a real cluster. Timestamps are RFC 3339 strings as stored in objects.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp (``Z`` or an offset, optional fraction) as an aware datetime.

    Raises:
        ValueError: when `value` is not such a timestamp.
    """
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def since(timestamp: str | None, now: datetime) -> str:
    """How long ago `timestamp` was, as kubectl prints it; ``<unknown>`` when unset or malformed."""
    if not timestamp:
        return "<unknown>"
    try:
        then = parse_time(timestamp)
    except ValueError:
        return "<invalid>"
    return human_duration((now - then).total_seconds())


age = since
"""The AGE column: `since` applied to ``metadata.creationTimestamp``."""


def human_duration(seconds: float) -> str:
    """apimachinery's ``HumanDuration``: coarser units as the duration grows."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    return next(text(max(whole, 0)) for limit, text in _SCALE if whole < limit)


_HOUR, _DAY, _YEAR = 3600, 86400, 365 * 86400
_SCALE: list[tuple[float, Callable[[int], str]]] = [
    (120, lambda s: f"{s}s"),
    (600, lambda s: _pair(s // 60, "m", s % 60, "s")),
    (3 * _HOUR, lambda s: f"{s // 60}m"),
    (8 * _HOUR, lambda s: _pair(s // _HOUR, "h", (s // 60) % 60, "m")),
    (48 * _HOUR, lambda s: f"{s // _HOUR}h"),
    (8 * _DAY, lambda s: _pair(s // _DAY, "d", (s // _HOUR) % 24, "h")),
    (2 * _YEAR, lambda s: f"{s // _DAY}d"),
    (8 * _YEAR, lambda s: _pair(s // _YEAR, "y", (s // _DAY) % 365, "d")),
    (float("inf"), lambda s: f"{s // _YEAR}y"),
]


def _pair(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}" if minor == 0 else f"{major}{major_unit}{minor}{minor_unit}"
