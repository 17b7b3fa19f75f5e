"""The controller's state of a job: re-exported from `trainguard.store.jobstate`.

The model moved to the store package because `JobRecord` carries it typed and the store may not
import the controller; controller code keeps importing it from here.
"""

from __future__ import annotations

from trainguard.store.jobstate import (
    PHASE_TRANSITIONS,
    TERMINAL,
    ActiveFault,
    JobPhase,
    JobState,
    Remediated,
    Resize,
)

__all__ = [
    "PHASE_TRANSITIONS",
    "TERMINAL",
    "ActiveFault",
    "JobPhase",
    "JobState",
    "Remediated",
    "Resize",
]
