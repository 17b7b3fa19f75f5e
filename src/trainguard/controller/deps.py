"""What phase handlers act through, and the controller's tunables."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainguard.backends.base import Backend
from trainguard.controller.agents import AgentHub
from trainguard.controller.pods import PodMaker
from trainguard.store.sqlite import SqliteStore


@dataclass(frozen=True)
class ControllerSettings:
    """Timing and limits of the controller."""

    poll_interval: float = 1.0
    """Seconds an agent status may age before the controller polls it again."""
    loop_interval: float = 0.5
    """Seconds between steps when nothing wakes the loop earlier (agent pushes wake it)."""
    ready_timeout: float = 180.0
    """Seconds a new pod's agent may take to become ready before the pod counts as lost."""
    stop_timeout: float = 90.0
    """Seconds an agent may take to stop its workers before its pod is replaced."""
    start_resend_after: float = 5.0
    """Seconds after which a /start that left the agent ready is sent again."""


@dataclass
class Deps:
    """The effects a reconcile step may use."""

    store: SqliteStore
    backend: Backend
    hub: AgentHub
    maker: PodMaker
    settings: ControllerSettings = field(default_factory=ControllerSettings)
    callback_url: str | None = None
