"""The node health agent: run the checks that are due, decide the node's health, write it.

One agent runs per node (a DaemonSet pod on Kubernetes, one process per simulated node
locally). Like the controller it is a loop over `HealthAgent.step`, which tests call directly
with a fake clock: a step probes the checks whose interval has elapsed, folds the reports into
the `FaultTracker` (hysteresis), updates the node's fault history, decides the labels with
`decide_labels`, writes labels and annotations in **one** patch through the `NodeStatusSink`,
and only then emits events — so an event never announces a label that was not written.

A reboot-class fault that already happened in an earlier boot of the node (same check, same
reason, within ``escalate_window_s``) is escalated to ``UnschedulablePendingReplacement``: the
reboot did not fix it. After a restart the agent re-reads the ``fault-details`` annotation and
holds the faults it had raised, so a restart of the agent does not silently return a sick node
to service.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from trainguard import constants as c
from trainguard.clock import Clock, SystemClock
from trainguard.errors import HealthCheckError
from trainguard.health.decide import LabelDecision, decide_labels
from trainguard.health.fault_history import (
    SOURCE_AGENT,
    FaultRecord,
    decode_fault_details,
    encode_fault_details,
    recover,
    should_escalate,
)
from trainguard.health.report import (
    HealthCheck,
    HealthReport,
    NodeAction,
    probe_error,
    unhealthy,
)
from trainguard.health.sink import EventType, NodeStatusSink
from trainguard.health.system import BootIdProvider
from trainguard.health.tracker import Change, FaultTracker, Transition

DEFAULT_INTERVAL_S = 30.0
DAY_S = 86400.0


@dataclass(frozen=True)
class ScheduledCheck:
    """A check and how often it runs (seconds between the starts of two probes)."""

    check: HealthCheck
    interval_s: float = DEFAULT_INTERVAL_S


@dataclass(frozen=True)
class StepResult:
    """What one step did (for tests, logs and ``health check``)."""

    reports: list[HealthReport] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    decision: LabelDecision = field(default_factory=LabelDecision)


_EVENTS: dict[Change, tuple[EventType, str]] = {
    Change.RAISED: ("Warning", c.REASON_HEALTH_CHECK_FAILED),
    Change.UPDATED: ("Warning", c.REASON_HEALTH_CHECK_FAILED),
    Change.NOTICE: ("Warning", c.REASON_HEALTH_CHECK_NOTICE),
    Change.CLEARED: ("Normal", c.REASON_HEALTH_CHECK_RECOVERED),
    Change.ERROR: ("Warning", c.REASON_HEALTH_CHECK_ERROR),
}


class HealthAgent:
    """Periodic health checks of one node, written through a sink.

    Args:
        node: the node's name in the sink.
        sink: where labels, annotations and events go.
        checks: the checks (a bare check runs every ``DEFAULT_INTERVAL_S``).
        clock: time source (``monotonic`` schedules, ``wall`` stamps reports).
        recover_after: consecutive passing probes before a fault clears (hysteresis).
        boot_id: the node's boot id (kernel faults and escalation are per boot).
        escalate_window_s: a reboot fault recurring after a reboot within this window asks for
            replacement; 0 disables escalation.
    """

    def __init__(
        self,
        node: str,
        sink: NodeStatusSink,
        checks: Sequence[HealthCheck | ScheduledCheck],
        *,
        clock: Clock | None = None,
        recover_after: int = 3,
        boot_id: BootIdProvider | None = None,
        escalate_window_s: float = DAY_S,
    ) -> None:
        self.node = node
        self.sink = sink
        self.checks = [s if isinstance(s, ScheduledCheck) else ScheduledCheck(s) for s in checks]
        names = [s.check.name for s in self.checks]
        if len(set(names)) != len(names):
            raise ValueError(f"check names must be unique, got {names}")
        self.clock = clock or SystemClock()
        self.tracker = FaultTracker(recover_after=recover_after)
        self.escalate_window_s = escalate_window_s
        self._boot_id = boot_id
        self._next_due: dict[str, float] = {}
        self._restored = False
        self._boot: str | None = None

    def step(self) -> StepResult:
        """Probe the due checks and write the node's health; return what happened."""
        now, mono = self.clock.wall(), self.clock.monotonic()
        annotations = self.sink.node_annotations(self.node)
        stored = decode_fault_details(annotations.get(c.ANNOTATION_FAULT_DETAILS))
        boot = self._boot_id() if self._boot_id else None
        if not self._restored:
            self._restore(stored, boot)
        elif boot != self._boot:
            self.tracker.clear()
        self._boot = boot
        history = _forget_other_boots(stored, boot, now)
        reports = [self._escalate(r, history, boot) for r in self._probe_due(now, mono)]
        transitions = [t for t in map(self.tracker.observe, reports) if t is not None]
        new_history = _record(history, transitions, boot_id=boot, now=now)
        labels = self.sink.node_labels(self.node)
        decision = decide_labels(labels, annotations, self.tracker.active())
        patch_annotations = dict(decision.annotations)
        if new_history != stored:
            patch_annotations[c.ANNOTATION_FAULT_DETAILS] = encode_fault_details(new_history)
        if decision.labels or patch_annotations:
            self.sink.patch_node(self.node, labels=decision.labels, annotations=patch_annotations)
        self._emit(transitions, decision)
        return StepResult(reports, transitions, decision)

    def seconds_until_due(self) -> float:
        """Seconds until the next check is due (0 when one is due now)."""
        if not self._next_due:
            return 0.0
        return max(0.0, min(self._next_due.values()) - self.clock.monotonic())

    def run(self, stop: threading.Event, *, min_sleep_s: float = 0.05) -> None:
        """Repeat `step` until ``stop`` is set, sleeping until the next check is due."""
        while not stop.is_set():
            self.step()
            stop.wait(max(min_sleep_s, self.seconds_until_due()))

    def _probe_due(self, now: float, mono: float) -> list[HealthReport]:
        reports = []
        for scheduled in self.checks:
            name = scheduled.check.name
            if self._next_due.get(name, mono) > mono:
                continue
            self._next_due[name] = mono + scheduled.interval_s
            reports.append(probe(scheduled.check, now))
        return reports

    def _escalate(
        self, report: HealthReport, history: Sequence[FaultRecord], boot: str | None
    ) -> HealthReport:
        if not should_escalate(
            report, history, boot_id=boot, now=report.time, window_s=self.escalate_window_s
        ):
            return report
        return replace(
            report,
            action=NodeAction.REPLACE,
            message=f"{report.message} (recurred after a reboot: replacing)",
            evidence={**report.evidence, "escalatedFrom": NodeAction.REBOOT.label},
        )

    def _restore(self, history: Sequence[FaultRecord], boot: str | None) -> None:
        """Hold again the faults this agent had raised in this boot before it restarted."""
        self._restored = True
        by_name = {s.check.name: s.check for s in self.checks}
        for record in history:
            check = by_name.get(record.check)
            mine = record.active and record.source == SOURCE_AGENT and record.boot_id == boot
            if not mine or check is None:
                continue
            restore = getattr(check, "restore", None)
            if restore is not None:
                restore(record.evidence, boot_id=record.boot_id)
            self.tracker.seed(_report_of(record))

    def _emit(self, transitions: Sequence[Transition], decision: LabelDecision) -> None:
        for transition in transitions:
            event_type, reason = _EVENTS[transition.change]
            report = transition.report
            message = f"{report.check}: {report.reason}: {report.message}"
            self.sink.emit_event(self.node, type=event_type, reason=reason, message=message)
        if decision.changes_health:
            back: EventType = "Normal" if decision.after == c.HEALTH_SCHEDULABLE else "Warning"
            self.sink.emit_event(
                self.node,
                type=back,
                reason=c.REASON_NODE_HEALTH_CHANGED,
                message=f"{c.LABEL_NODE_HEALTH}: {decision.before} -> {decision.after}",
            )


def probe(check: HealthCheck, now: float) -> HealthReport:
    """Run ``check`` once; a probe that cannot run becomes an ``Error`` report."""
    try:
        return check.check(now)
    except HealthCheckError as exc:
        return probe_error(check.name, now, str(exc))


def _record(
    history: Sequence[FaultRecord],
    transitions: Sequence[Transition],
    *,
    boot_id: str | None,
    now: float,
) -> list[FaultRecord]:
    """The fault history after ``transitions``."""
    records = list(history)
    for transition in transitions:
        report = transition.report
        if transition.change in (Change.CLEARED, Change.UPDATED):
            records = recover(records, report.check, now)
        if transition.change in (Change.RAISED, Change.UPDATED, Change.NOTICE):
            records.append(FaultRecord.from_report(report, boot_id=boot_id))
    return records


def _forget_other_boots(
    history: Sequence[FaultRecord], boot: str | None, now: float
) -> list[FaultRecord]:
    """Mark the agent's faults from earlier boots recovered: the reboot was their remedy, and a
    fault that outlived it is found again (and raised at once) by the next probe."""
    return [
        replace(r, recovered_at=now)
        if r.active and r.source == SOURCE_AGENT and r.boot_id != boot
        else r
        for r in history
    ]


def _report_of(record: FaultRecord) -> HealthReport:
    """An Unhealthy report standing for an active record (used when restoring)."""
    return unhealthy(
        record.check,
        record.detected_at,
        reason=record.reason,
        message=record.message,
        fault_type=record.fault_type,
        action=NodeAction.parse(record.action or "none"),
        **record.evidence,
    )
