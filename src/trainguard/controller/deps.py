"""What phase handlers act through, and the controller's tunables."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainguard.backends.base import Backend
from trainguard.backends.gate import AdmissionGate, OpenGate
from trainguard.controller.agents import AgentHub
from trainguard.controller.lease import LEASE_DURATION
from trainguard.controller.pods import PodMaker
from trainguard.store.base import Store


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
    callback_host: str = "127.0.0.1"
    """Address the agents' status push endpoint binds (``0.0.0.0`` in a cluster)."""
    callback_port: int = 0
    """Port of the push endpoint (0: any free port)."""
    callback_advertise: str | None = None
    """Address agents are told to push to (default: ``callback_host``; the pod IP in a cluster)."""
    lease_duration: float = LEASE_DURATION
    """Seconds this controller promises to renew its lease within (a silent holder is taken
    over after that long)."""


@dataclass
class Deps:
    """The effects a reconcile step may use."""

    store: Store
    backend: Backend
    hub: AgentHub
    maker: PodMaker
    settings: ControllerSettings = field(default_factory=ControllerSettings)
    callback_url: str | None = None
    gate: AdmissionGate = field(default_factory=OpenGate)
    """Whether a job may have pods now (Kueue on Kubernetes; always yes without one)."""
