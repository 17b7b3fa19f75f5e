"""Clock skew against the controller.

Restart windows, log-rule deadlines and checkpoint ages are compared across machines; a node
whose clock is minutes off turns a healthy job into a "hanging" one (or hides a real hang). The
check compares this machine's wall clock with a reference: any callable returning the
reference's offset from us in seconds, or — the usual case — `http_date_offset`, which reads the
``Date`` header of the controller's HTTP endpoint (every HTTP server sends one, so no new route
is needed). ``Date`` has one-second resolution, so thresholds below ~2 s are not meaningful with
it; the estimate's uncertainty is reported as evidence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from trainguard.errors import HealthCheckError
from trainguard.health.report import HealthReport, NodeAction, healthy, unhealthy

FAULT_CLOCK = "ClockSkew"


@dataclass(frozen=True)
class ClockOffset:
    """Reference time minus local time, in seconds, with the estimate's uncertainty."""

    offset: float
    uncertainty: float
    source: str


OffsetSource = Callable[[], ClockOffset]


def http_date_offset(
    url: str, *, timeout: float = 5.0, transport: httpx.BaseTransport | None = None
) -> OffsetSource:
    """A source that estimates the offset from the ``Date`` header of ``url``.

    ``Date`` is truncated to whole seconds, so the server's clock read somewhere in
    ``[Date, Date + 1)``; we take the middle and compare it with the middle of our request.
    """

    def measure() -> ClockOffset:
        try:
            with httpx.Client(timeout=timeout, transport=transport) as client:
                start = time.time()
                response = client.head(url)
                end = time.time()
        except httpx.HTTPError as exc:
            raise HealthCheckError(f"cannot reach {url} for its Date header: {exc}") from exc
        header = response.headers.get("date")
        if not header:
            raise HealthCheckError(f"{url} sent no Date header")
        try:
            server = parsedate_to_datetime(header).timestamp() + 0.5
        except (TypeError, ValueError) as exc:
            raise HealthCheckError(f"{url} sent an unreadable Date header {header!r}") from exc
        local = (start + end) / 2
        return ClockOffset(server - local, 0.5 + (end - start) / 2, url)

    return measure


def fixed_offset(offset: float, *, source: str = "fixed") -> OffsetSource:
    """A source reporting a known offset (tests, or a reference read elsewhere)."""
    return lambda: ClockOffset(offset, 0.0, source)


class ClockSkewCheck:
    """Unhealthy when ``|offset|`` exceeds ``max_skew_s`` by more than the uncertainty."""

    name = "ClockSkew"

    def __init__(
        self,
        reference: OffsetSource,
        *,
        max_skew_s: float = 5.0,
        action: NodeAction = NodeAction.REBOOT,
    ) -> None:
        self.max_skew_s = max_skew_s
        self.action = action
        self._reference = reference

    def check(self, now: float) -> HealthReport:
        """Measure the offset once and judge it."""
        measured = self._reference()
        evidence = {
            "offsetSeconds": round(measured.offset, 3),
            "uncertaintySeconds": round(measured.uncertainty, 3),
            "maxSkewSeconds": self.max_skew_s,
            "reference": measured.source,
        }
        text = f"clock differs from {measured.source} by {measured.offset:+.3f}s"
        if abs(measured.offset) - measured.uncertainty <= self.max_skew_s:
            return healthy(self.name, now, text, **evidence)
        return unhealthy(
            self.name,
            now,
            reason="ClockSkewExceeded",
            message=f"{text} (limit {self.max_skew_s}s)",
            fault_type=FAULT_CLOCK,
            action=self.action,
            **evidence,
        )
