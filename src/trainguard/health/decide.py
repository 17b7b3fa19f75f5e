"""Who may set the node health label to what: a pure decision over the node's current labels.

Several writers share ``node-health-status``: the health agent, the deep-check runner (which
sets ``Unschedulable`` while it runs), the controller's node recovery, and people (who set
``UnschedulablePendingReboot``/``...Replacement`` to ask for one). The agent therefore
remembers the value it last wrote in the ``trainguard.io/health-agent-status`` annotation and
follows two rules:

* it may always make the label *more severe* (a fault outranks a deep check in progress or a
  person's reboot request, never the other way round), and it may change a value it wrote
  itself in either direction;
* it never lowers a value someone else wrote — a person's replacement request stays until a
  person or the recovery flow clears it, even while every check passes.

The fault labels follow the health label: the agent sets them while its value stands and
removes them when it returns the node to ``Schedulable``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from trainguard import constants as c
from trainguard.health.fault_history import label_value
from trainguard.health.report import HealthReport, NodeAction


@dataclass(frozen=True)
class LabelDecision:
    """The patch to write (empty dicts = nothing to write) and the label change it makes."""

    labels: dict[str, str | None] = field(default_factory=dict)
    annotations: dict[str, str | None] = field(default_factory=dict)
    before: str | None = None
    after: str | None = None

    @property
    def changes_health(self) -> bool:
        """Whether ``node-health-status`` changes."""
        return self.before != self.after


def decide_labels(
    labels: Mapping[str, str], annotations: Mapping[str, str], active: Sequence[HealthReport]
) -> LabelDecision:
    """The health-agent's patch for a node whose active faults are ``active``."""
    current = labels.get(c.LABEL_NODE_HEALTH)
    mine = annotations.get(c.ANNOTATION_HEALTH_AGENT_STATUS)
    owned = current is None or current == mine
    wanted = max((r.action for r in active), default=NodeAction.NONE)
    if not owned and wanted <= NodeAction.from_label(current):
        if wanted is NodeAction.NONE and current == c.HEALTH_SCHEDULABLE:
            return _adopt(labels, mine, current)
        return LabelDecision(before=current, after=current)
    desired = wanted.label
    patch_labels: dict[str, str | None] = {}
    if current != desired:
        patch_labels[c.LABEL_NODE_HEALTH] = desired
    patch_labels.update(_fault_labels(labels, active))
    patch_annotations: dict[str, str | None] = {}
    if mine != desired:
        patch_annotations[c.ANNOTATION_HEALTH_AGENT_STATUS] = desired
    return LabelDecision(patch_labels, patch_annotations, current, desired)


def _adopt(labels: Mapping[str, str], mine: str | None, current: str) -> LabelDecision:
    """Someone else put the node back to Schedulable and we agree: take ownership again."""
    patch: dict[str, str | None] = {}
    if mine != current:
        patch[c.ANNOTATION_HEALTH_AGENT_STATUS] = current
    return LabelDecision({}, patch, current, current)


def _fault_labels(
    labels: Mapping[str, str], active: Sequence[HealthReport]
) -> dict[str, str | None]:
    held = [r for r in active if r.action is not NodeAction.NONE]
    wanted = {
        c.LABEL_FAULT_TYPES: label_value(r.fault_type for r in held),
        c.LABEL_FAULT_REASONS: label_value(r.reason for r in held),
    }
    return {k: v for k, v in wanted.items() if labels.get(k) != v}
