"""Limits on every input of the MTC server, and the parsers that enforce them.

The server is reachable by anything on the cluster network, so each value from a request is
checked before it touches memory: names are plain (they become directory names), numbers are
in range, bodies are capped. A refusal is a 400 whose message names the field, the way the
library's own errors quote the server's text back to the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trainguard.errors import UsageError

NAMESPACE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
"""HyperPod's rule for a namespace (alphanumerics, hyphens, underscores), at most 128 chars."""
MAX_STEP = (1 << 63) - 1
"""Largest step number (a signed 64-bit integer, like the service's)."""


class FieldError(UsageError):
    """A request value out of its allowed range; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class MtcLimits:
    """What one server accepts.

    Attributes:
        max_shard_bytes: largest shard body (one rank's blob of one step).
        max_ranks: largest ``num_ranks`` of a namespace (data-parallel ranks + metadata).
        max_steps_retained: largest ``steps_retained`` of a namespace.
        max_latest: largest ``limit`` of a latest-steps query.
        memory_bytes: committed shard bytes this node holds at most (retention included).
    """

    max_shard_bytes: int = 8 << 30
    max_ranks: int = 1 << 16
    max_steps_retained: int = 64
    max_latest: int = 1000
    memory_bytes: int = 64 << 30


def namespace_name(value: str) -> str:
    """``value`` if it is a valid namespace name.

    Raises:
        FieldError: it is not.
    """
    if not NAMESPACE_PATTERN.match(value):
        raise FieldError("namespace", f"{value[:64]!r} must be 1-128 letters, digits, '-' or '_'")
    return value


def int_field(value: str | int | None, field: str, *, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``.

    Raises:
        FieldError: missing, not an integer, or out of range.
    """
    if value is None:
        raise FieldError(field, "is required")
    try:
        number = int(value)
    except ValueError:
        raise FieldError(field, f"{str(value)[:32]!r} is not an integer") from None
    if not low <= number <= high:
        raise FieldError(field, f"{number} is not between {low} and {high}")
    return number
