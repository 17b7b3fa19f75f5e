"""Node health: checks, the node health agent, and deep health checks (issue 7).

Every check answers ``check(now) -> HealthReport``; the `HealthAgent` runs them on a schedule and
writes the node's ``sagemaker.amazonaws.com/node-health-status`` label, fault labels and the
``fault-details`` annotation through a `NodeStatusSink`, the only way this package talks to
nodes (the local store, Kubernetes, or an in-memory fake in tests). See ``docs/health.md``.
"""

from trainguard.health.agent import HealthAgent, ScheduledCheck, StepResult
from trainguard.health.report import HealthCheck, HealthReport, HealthStatus, NodeAction
from trainguard.health.sink import NodeStatusSink

__all__ = [
    "HealthAgent",
    "HealthCheck",
    "HealthReport",
    "HealthStatus",
    "NodeAction",
    "NodeStatusSink",
    "ScheduledCheck",
    "StepResult",
]
