"""Running deep health checks on nodes: the label protocol around the checks.

HyperPod marks a node under deep health check ``Unschedulable`` with
``deep-health-check-status=InProgress``, then ``Passed`` or ``Failed``. The runner does the same
through the `NodeStatusSink`:

1. before: every node gets ``deep-health-check-status=InProgress`` and, if it was
   ``Schedulable`` (or unlabelled), ``node-health-status=Unschedulable`` — a node already asking
   for a reboot or replacement keeps that. The value it had is kept in the
   ``trainguard.io/deep-health-previous`` annotation, so a person can see what to restore if the
   runner dies mid-way.
2. the checks run; a report fails the nodes it names in ``evidence["failedNodes"]`` (a
   connectivity rank that died) or, without that, every node under test.
3. after, per node: ``Passed`` restores the previous health value (only if the label is still
   the ``Unschedulable`` we wrote — someone else's later change wins); ``Failed`` sets the worst
   action of its failures (never lowering the label), the fault labels and a ``fault-details``
   record with source ``deep-health-check``. A check that could not run (``Error``) fails the
   node but leaves it ``Unschedulable`` for a person: nothing proved it sick or healthy.

Events follow each patch: ``DeepHealthCheckStarted``, ``DeepHealthCheckPassed`` or
``DeepHealthCheckFailed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from trainguard import constants as c
from trainguard.clock import Clock, SystemClock
from trainguard.health.agent import probe
from trainguard.health.fault_history import (
    SOURCE_DEEP,
    FaultRecord,
    decode_fault_details,
    encode_fault_details,
    label_value,
)
from trainguard.health.report import HealthCheck, HealthReport, HealthStatus, NodeAction
from trainguard.health.sink import NodeStatusSink


@dataclass(frozen=True)
class DeepResult:
    """The outcome of a deep health check on one node."""

    node: str
    status: str
    failures: list[HealthReport]


class DeepHealthRunner:
    """Runs deep checks on nodes and writes the labels around them.

    Args:
        sink: where node labels, annotations and events go.
        clock: wall time for fault records.
    """

    def __init__(self, sink: NodeStatusSink, *, clock: Clock | None = None) -> None:
        self.sink = sink
        self.clock = clock or SystemClock()

    def run(self, nodes: Sequence[str], checks: Sequence[HealthCheck]) -> dict[str, DeepResult]:
        """Mark ``nodes``, run ``checks`` once each, write the outcome per node."""
        for node in nodes:
            self._start(node, [ch.name for ch in checks])
        reports: list[HealthReport] = []
        try:
            reports = [probe(check, self.clock.wall()) for check in checks]
        finally:
            results = {n: self._finish(n, _failures(n, nodes, reports, checks)) for n in nodes}
        return results

    def _start(self, node: str, names: list[str]) -> None:
        current = self.sink.node_labels(node).get(c.LABEL_NODE_HEALTH)
        labels: dict[str, str | None] = {c.LABEL_DEEP_HEALTH: c.DEEP_HEALTH_IN_PROGRESS}
        if current in (None, c.HEALTH_SCHEDULABLE):
            labels[c.LABEL_NODE_HEALTH] = c.HEALTH_UNSCHEDULABLE
        previous = current or c.HEALTH_SCHEDULABLE
        annotations = {c.ANNOTATION_DEEP_HEALTH_PREVIOUS: previous}
        self.sink.patch_node(node, labels=labels, annotations=annotations)
        message = f"Deep health check {', '.join(names)} started"
        self.sink.emit_event(
            node, type="Normal", reason=c.REASON_DEEP_HEALTH_STARTED, message=message
        )

    def _finish(self, node: str, failures: list[HealthReport]) -> DeepResult:
        labels = self.sink.node_labels(node)
        annotations = self.sink.node_annotations(node)
        previous = annotations.get(c.ANNOTATION_DEEP_HEALTH_PREVIOUS, c.HEALTH_SCHEDULABLE)
        still_ours = labels.get(c.LABEL_NODE_HEALTH) == c.HEALTH_UNSCHEDULABLE
        now = self.clock.wall()
        history = decode_fault_details(annotations.get(c.ANNOTATION_FAULT_DETAILS))
        history = [
            replace(r, recovered_at=now) if r.source == SOURCE_DEEP and r.active else r
            for r in history
        ]
        patch_labels: dict[str, str | None] = {}
        if failures:
            patch_labels[c.LABEL_DEEP_HEALTH] = c.DEEP_HEALTH_FAILED
            health = _failed_health(labels.get(c.LABEL_NODE_HEALTH), failures, still_ours)
            patch_labels[c.LABEL_NODE_HEALTH] = health
            patch_labels[c.LABEL_FAULT_TYPES] = label_value(r.fault_type for r in failures)
            patch_labels[c.LABEL_FAULT_REASONS] = label_value(r.reason for r in failures)
            history += [
                FaultRecord.from_report(r, boot_id=None, source=SOURCE_DEEP)
                for r in failures
                if r.failed
            ]
        else:
            patch_labels[c.LABEL_DEEP_HEALTH] = c.DEEP_HEALTH_PASSED
            if still_ours:
                patch_labels[c.LABEL_NODE_HEALTH] = previous
        annotations_patch: dict[str, str | None] = {
            c.ANNOTATION_DEEP_HEALTH_PREVIOUS: None,
            c.ANNOTATION_FAULT_DETAILS: encode_fault_details(history),
        }
        self.sink.patch_node(node, labels=patch_labels, annotations=annotations_patch)
        self._announce(node, failures)
        status = c.DEEP_HEALTH_FAILED if failures else c.DEEP_HEALTH_PASSED
        return DeepResult(node, status, failures)

    def _announce(self, node: str, failures: list[HealthReport]) -> None:
        if not failures:
            self.sink.emit_event(
                node,
                type="Normal",
                reason=c.REASON_DEEP_HEALTH_PASSED,
                message="Deep health check passed",
            )
            return
        text = "; ".join(f"{r.check}: {r.reason}: {r.message}" for r in failures)
        self.sink.emit_event(node, type="Warning", reason=c.REASON_DEEP_HEALTH_FAILED, message=text)


def _failures(
    node: str, nodes: Sequence[str], reports: list[HealthReport], checks: Sequence[HealthCheck]
) -> list[HealthReport]:
    """Reports that fail ``node``; a check that never reported (interrupted) fails everyone."""
    if len(reports) < len(checks):
        missing = [ch.name for ch in checks[len(reports) :]]
        return [
            HealthReport(
                missing[0],
                HealthStatus.ERROR,
                "DeepHealthCheckInterrupted",
                f"interrupted before {', '.join(missing)} finished",
                0.0,
            )
        ]
    return [r for r in reports if r.status is HealthStatus.ERROR or _fails(r, node, nodes)]


def _fails(report: HealthReport, node: str, nodes: Sequence[str]) -> bool:
    return report.failed and node in report.evidence.get("failedNodes", nodes)


def _failed_health(current: str | None, failures: list[HealthReport], still_ours: bool) -> str:
    """The worst of the failures' actions and the current label; cordon when none asks more."""
    wanted = max((r.action for r in failures), default=NodeAction.NONE)
    wanted = max(wanted, NodeAction.CORDON)
    if not still_ours:
        wanted = max(wanted, NodeAction.from_label(current))
    return wanted.label
