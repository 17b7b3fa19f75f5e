"""Hysteresis: when a check's fault starts holding against the node, and when it stops.

Pure bookkeeping over reports, no I/O. The rules (documented in ``docs/health.md``):

* an Unhealthy report with a node action makes that check's fault *active* at once — a fault
  is acted on the first time it is seen;
* an active fault clears only after ``recover_after`` consecutive passing reports (Healthy,
  NotApplicable, or a notice with no action), so a disk hovering at its threshold does not flap
  the node label on every probe;
* an Error report (the probe could not run) neither raises nor clears a fault: it changes
  nothing but is announced once per run of errors;
* an Unhealthy report with no action is a *notice*: announced, recorded, never held.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from trainguard.health.report import HealthReport, HealthStatus, NodeAction


class Change(StrEnum):
    """What one report changed for its check."""

    RAISED = "raised"
    UPDATED = "updated"
    CLEARED = "cleared"
    NOTICE = "notice"
    ERROR = "error"


@dataclass(frozen=True)
class Transition:
    """A change worth recording and announcing."""

    change: Change
    report: HealthReport


@dataclass
class _CheckState:
    active: HealthReport | None = None
    passes: int = 0
    erroring: bool = False


class FaultTracker:
    """Per-check fault state.

    Args:
        recover_after: consecutive passing reports needed to clear an active fault (≥ 1).
    """

    def __init__(self, *, recover_after: int = 3) -> None:
        if recover_after < 1:
            raise ValueError("recover_after must be at least 1")
        self.recover_after = recover_after
        self._states: dict[str, _CheckState] = {}

    def active(self) -> list[HealthReport]:
        """The faults currently held against the node, worst first."""
        held = [s.active for s in self._states.values() if s.active is not None]
        return sorted(held, key=lambda r: (-r.action, r.check))

    def worst_action(self) -> NodeAction:
        """The most severe action among active faults (``NONE`` when there is none)."""
        return max((r.action for r in self.active()), default=NodeAction.NONE)

    def is_active(self, check: str) -> bool:
        """Whether ``check`` has an active fault."""
        state = self._states.get(check)
        return state is not None and state.active is not None

    def clear(self) -> None:
        """Forget every fault (the node rebooted: what still holds is found again)."""
        self._states.clear()

    def seed(self, report: HealthReport) -> None:
        """Hold ``report`` as active without announcing it (state restored after a restart)."""
        self._states.setdefault(report.check, _CheckState()).active = report

    def observe(self, report: HealthReport) -> Transition | None:
        """Fold one report in; return the transition it caused, if any."""
        state = self._states.setdefault(report.check, _CheckState())
        if report.status is HealthStatus.ERROR:
            was = state.erroring
            state.erroring = True
            return None if was else Transition(Change.ERROR, report)
        state.erroring = False
        if report.failed and report.action is not NodeAction.NONE:
            return self._fail(state, report)
        return self._pass(state, report)

    def _fail(self, state: _CheckState, report: HealthReport) -> Transition | None:
        previous, state.active, state.passes = state.active, report, 0
        if previous is None:
            return Transition(Change.RAISED, report)
        if (previous.reason, previous.action) != (report.reason, report.action):
            return Transition(Change.UPDATED, report)
        return None

    def _pass(self, state: _CheckState, report: HealthReport) -> Transition | None:
        notice = Transition(Change.NOTICE, report) if report.failed else None
        if state.active is None:
            return notice
        state.passes += 1
        if state.passes < self.recover_after:
            return notice
        state.active, state.passes = None, 0
        return Transition(Change.CLEARED, report)
