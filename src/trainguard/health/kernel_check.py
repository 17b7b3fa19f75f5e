"""`KernelLogCheck`: kernel log lines classified by the rule table, latched for the boot.

A kernel fault is an event, not a state: the Xid 79 line is printed once, and the GPU stays
gone. So a finding that asks for a node action is *latched*: the check keeps reporting it until
the machine's boot id changes (the node was rebooted — really, or by a simulated node's
recovery rewriting its boot-id file). Findings with no action (Xid 13) are reported once, in the
read that saw them, so they reach the fault history and an event without taking the node out.
Latched faults survive a restart of the health agent through `restore`, fed from the node's
``fault-details`` annotation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from trainguard.health.kernlog import LogSource
from trainguard.health.report import (
    HealthReport,
    NodeAction,
    healthy,
    unhealthy,
)
from trainguard.health.system import BootIdProvider
from trainguard.health.xid import KernelFinding, classify

Classifier = Callable[[str], KernelFinding | None]


class KernelLogCheck:
    """Reads new kernel log lines from ``source`` on every call and classifies them."""

    name = "KernelLog"

    def __init__(
        self,
        source: LogSource,
        *,
        boot_id: BootIdProvider | None = None,
        classifier: Classifier = classify,
    ) -> None:
        self.source = source
        self._boot_id = boot_id
        self._classify = classifier
        self._boot: str | None = None
        self._latched: dict[str, tuple[KernelFinding, float]] = {}

    def check(self, now: float) -> HealthReport:
        """Read what is new; report latched faults (worst first) or fresh notices."""
        self._follow_boot()
        findings = [f for f in map(self._classify, self.source.read_new()) if f is not None]
        notices: list[KernelFinding] = []
        for finding in findings:
            if finding.action is NodeAction.NONE:
                notices.append(finding)
            else:
                self._latched.setdefault(finding.key, (finding, now))
        if self._latched:
            return self._latched_report(now)
        if notices:
            last = notices[-1]
            return unhealthy(
                self.name,
                now,
                reason=last.reason,
                message=f"{len(notices)} kernel notice(s), no node action: {last.line}",
                fault_type=last.fault_type,
                action=NodeAction.NONE,
                findings=[_describe(f, now) for f in notices],
                bootId=self._boot,
            )
        return healthy(self.name, now, f"no faults in {self.source.description}", bootId=self._boot)

    def restore(self, evidence: Mapping[str, object], *, boot_id: str | None) -> bool:
        """Re-latch the findings of an earlier report of this check if it was made in this boot.

        Args:
            evidence: the ``evidence`` of the earlier Unhealthy report (``findings`` list).
            boot_id: the boot id the earlier report was made in.

        Returns:
            Whether anything was re-latched.
        """
        self._follow_boot()
        if boot_id != self._boot:
            return False
        restored = False
        for item in evidence.get("findings", []) or []:  # type: ignore[attr-defined]
            finding = KernelFinding(
                reason=str(item["reason"]),
                fault_type=str(item["faultType"]),
                action=NodeAction.parse(str(item["action"])),
                line=str(item["line"]),
                xid=item.get("xid"),
                device=item.get("device"),
            )
            if finding.action is not NodeAction.NONE:
                self._latched.setdefault(finding.key, (finding, float(item.get("since", 0.0))))
                restored = True
        return restored

    def _follow_boot(self) -> None:
        boot = self._boot_id() if self._boot_id else None
        if boot != self._boot:
            self._latched.clear()
            self._boot = boot

    def _latched_report(self, now: float) -> HealthReport:
        ordered = sorted(self._latched.values(), key=lambda item: (-item[0].action, item[1]))
        worst, _ = ordered[0]
        return unhealthy(
            self.name,
            now,
            reason=worst.reason,
            message=f"{len(ordered)} kernel fault(s) this boot; worst: {worst.line}",
            fault_type=worst.fault_type,
            action=worst.action,
            findings=[_describe(f, since) for f, since in ordered],
            bootId=self._boot,
        )


def _describe(finding: KernelFinding, since: float) -> dict[str, object]:
    return {
        "reason": finding.reason,
        "faultType": finding.fault_type,
        "action": finding.action.name,
        "xid": finding.xid,
        "device": finding.device,
        "line": finding.line,
        "since": since,
    }
