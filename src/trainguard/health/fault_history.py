"""The node's fault history: the ``fault-details`` annotation and the fault labels.

HyperPod keeps "a JSON list of recent faults with timestamps" in the
``sagemaker.amazonaws.com/fault-details`` annotation and the category / reason of the current
faults in the ``fault-types`` / ``fault-reasons`` labels. The history is shared by every writer
(health agent, deep-check runner) and outlives them, which is what lets the health agent
re-latch a kernel fault after its own restart and escalate a reboot fault that comes back after
the reboot. Label values must be valid Kubernetes label values (≤ 63 characters,
alphanumerics, ``-_.``), so several reasons are joined with ``.`` and cut at a separator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from trainguard.clock import rfc3339
from trainguard.health.report import HealthReport, NodeAction
from trainguard.spec.base import LABEL_VALUE_RE

HISTORY_LIMIT = 20
MESSAGE_LIMIT = 512
LABEL_VALUE_MAX = 63
SOURCE_AGENT = "health-agent"
SOURCE_DEEP = "deep-health-check"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class FaultRecord:
    """One fault in the history.

    Attributes:
        check: the check that found it.
        fault_type: category (``fault-types`` label).
        reason: detailed reason (``fault-reasons`` label).
        message: what was seen.
        action: the ``node-health-status`` it asked for, or ``None`` for a notice.
        detected_at: wall seconds.
        recovered_at: wall seconds when it cleared; ``None`` while active.
        boot_id: the boot it was seen in (kernel faults are per boot).
        source: who wrote it (``health-agent`` or ``deep-health-check``).
        evidence: what a check needs to restore its state (kernel findings only).
    """

    check: str
    fault_type: str
    reason: str
    message: str
    action: str | None
    detected_at: float
    recovered_at: float | None = None
    boot_id: str | None = None
    source: str = SOURCE_AGENT
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Not recovered yet."""
        return self.recovered_at is None

    @classmethod
    def from_report(
        cls, report: HealthReport, *, boot_id: str | None, source: str = SOURCE_AGENT
    ) -> FaultRecord:
        """The record of an Unhealthy report (notices are born recovered)."""
        notice = report.action is NodeAction.NONE
        findings = report.evidence.get("findings")
        kept = {"findings": findings[:10]} if findings else {}
        return cls(
            check=report.check,
            fault_type=report.fault_type,
            reason=report.reason,
            message=report.message[:MESSAGE_LIMIT],
            action=None if notice else report.action.label,
            detected_at=report.time,
            recovered_at=report.time if notice else None,
            boot_id=boot_id,
            source=source,
            evidence=kept,
        )

    def to_json(self) -> dict[str, Any]:
        """Wire form (camelCase, RFC 3339 times)."""
        data: dict[str, Any] = {
            "check": self.check,
            "faultType": self.fault_type,
            "reason": self.reason,
            "message": self.message,
            "action": self.action,
            "detectedAt": rfc3339(self.detected_at),
            "recoveredAt": None if self.recovered_at is None else rfc3339(self.recovered_at),
            "bootId": self.boot_id,
            "source": self.source,
        }
        if self.evidence:
            data["evidence"] = self.evidence
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRecord:
        """Inverse of `to_json`; raises ``KeyError``/``ValueError``/``TypeError`` if malformed."""
        recovered = data.get("recoveredAt")
        return cls(
            check=str(data["check"]),
            fault_type=str(data.get("faultType", "")),
            reason=str(data["reason"]),
            message=str(data.get("message", "")),
            action=data.get("action"),
            detected_at=_parse_time(data["detectedAt"]),
            recovered_at=None if recovered is None else _parse_time(recovered),
            boot_id=data.get("bootId"),
            source=str(data.get("source", SOURCE_AGENT)),
            evidence=dict(data.get("evidence") or {}),
        )


def _parse_time(value: Any) -> float:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def decode_fault_details(text: str | None) -> list[FaultRecord]:
    """Records from the annotation, oldest first; entries that do not parse are dropped (the
    annotation is rewritten on the next change, so a hand-edited mistake heals)."""
    if not text:
        return []
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        return []
    records = []
    for item in raw if isinstance(raw, list) else []:
        try:
            records.append(FaultRecord.from_json(item))
        except (KeyError, ValueError, TypeError, AttributeError):
            continue
    return records


def encode_fault_details(records: Sequence[FaultRecord], *, limit: int = HISTORY_LIMIT) -> str:
    """The newest ``limit`` records as the annotation's JSON; active records are kept first
    when trimming, so a long run of notices never pushes out a fault that still holds."""
    kept = list(records)
    while len(kept) > limit:
        oldest_done = next((i for i, r in enumerate(kept) if not r.active), 0)
        del kept[oldest_done]
    return json.dumps([r.to_json() for r in kept], separators=(",", ":"))


def recover(records: Sequence[FaultRecord], check: str, now: float) -> list[FaultRecord]:
    """Mark the active records of ``check`` recovered at ``now``."""
    return [replace(r, recovered_at=now) if r.active and r.check == check else r for r in records]


def label_value(parts: Iterable[str]) -> str | None:
    """Distinct ``parts`` joined with ``.`` as a valid label value (``None`` when empty)."""
    cleaned: list[str] = []
    for part in parts:
        token = _UNSAFE.sub("-", part).strip("-_.")
        if token and token not in cleaned:
            cleaned.append(token)
    value = ""
    for token in cleaned:
        candidate = f"{value}.{token}" if value else token
        if len(candidate) > LABEL_VALUE_MAX:
            break
        value = candidate
    if not value and cleaned:
        value = cleaned[0][:LABEL_VALUE_MAX].rstrip("-_.")
    assert LABEL_VALUE_RE.match(value), value
    return value or None


def should_escalate(
    report: HealthReport,
    history: Sequence[FaultRecord],
    *,
    boot_id: str | None,
    now: float,
    window_s: float,
) -> bool:
    """A reboot fault that already happened in an earlier boot within ``window_s``: the reboot
    did not fix it, so the node needs replacing."""
    if report.action is not NodeAction.REBOOT or boot_id is None or window_s <= 0:
        return False
    return any(
        r.check == report.check
        and r.reason == report.reason
        and r.action == NodeAction.REBOOT.label
        and r.boot_id not in (None, boot_id)
        and now - r.detected_at <= window_s
        for r in history
    )
