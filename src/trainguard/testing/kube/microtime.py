"""``metav1.MicroTime`` fields decoded as the real API server decodes them.

Event ``eventTime``/``series.lastObservedTime`` and Lease ``acquireTime``/``renewTime`` are
MicroTimes: apimachinery parses them with the single layout ``2006-01-02T15:04:05.000000Z07:00``
(exactly six fractional digits) and answers 400 for anything else — a whole-second
``2026-01-01T00:00:00Z`` included, which is how lightkube's models serialize a ``datetime``
whose microsecond is 0 (always, under a test's whole-second fake clock). It writes them back in
UTC with a ``Z``. kubectl decodes with the same layout and drops a list it cannot decode
(``describe`` then shows ``Events: <none>``), so the fake must never store another form. Other
built-in times (``metav1.Time``) are RFC 3339 in whole seconds and are not checked here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from trainguard.testing.kube.apierrors import bad_request
from trainguard.testing.kube.resources import ResourceType

LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
_MICRO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$")
MICRO_TIME_FIELDS: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {
    ("", "events"): (("eventTime",), ("series", "lastObservedTime")),
    ("coordination.k8s.io", "leases"): (("spec", "acquireTime"), ("spec", "renewTime")),
}
"""The MicroTime fields of each stored built-in resource, by (group, resource)."""


_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def normalize(value: str) -> str:
    """``value`` as the server writes a MicroTime back (UTC, ``Z``).

    Raises:
        ValueError: for anything but the MicroTime layout, worded as Go's parser words it
            (``cannot parse "Z" as ".000000"`` for a whole-second time).
    """
    if not _MICRO.match(value):
        raise ValueError(f'parsing time "{value}" as "{LAYOUT}": {_go_complaint(value)}')
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _go_complaint(value: str) -> str:
    """The part of Go's ``time.Parse`` error that says where the layout stopped matching."""
    if not _SECONDS.match(value):
        return "cannot parse as MicroTime"
    rest = value[19:]
    fraction = re.match(r"\.(\d*)", rest)
    if fraction is None or len(fraction.group(1)) < 6:
        return f'cannot parse "{rest}" as ".000000"'
    return f'cannot parse "{value[26:]}" as "Z07:00"'


def admit(
    rtype: ResourceType, obj: dict[str, Any], stored: dict[str, Any] | None
) -> dict[str, Any]:
    """The server's `Admission`: MicroTime fields normalized, or 400 as the decoder answers."""
    for path in MICRO_TIME_FIELDS.get((rtype.group, rtype.resource), ()):
        parent: Any = obj
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or parent.get(path[-1]) is None:
            continue
        try:
            parent[path[-1]] = normalize(str(parent[path[-1]]))
        except ValueError as exc:
            raise bad_request(
                f'{rtype.kind} in version "{rtype.version}" cannot be handled as a '
                f"{rtype.kind}: {exc}"
            ) from exc
    return obj
