"""Public test helpers: fakes that let tests drive trainguard without sleeping or networking.

Like ``kopf.testing``, this module is part of the public API so users can test their own
extensions (policies, backends) the way we test ours.
"""

from trainguard.testing.agent_server import FakeAgentServer, HttpFakeBackend
from trainguard.testing.agents import FakeAgent, FakeBackend
from trainguard.testing.clock import FakeClock
from trainguard.testing.gate import ScriptedGate
from trainguard.testing.nodes import InMemoryNodeSink, RecordedEvent
from trainguard.testing.nvml import FakeGpu, FakeNvml

__all__ = [
    "FakeAgent",
    "FakeAgentServer",
    "FakeBackend",
    "FakeClock",
    "FakeGpu",
    "FakeNvml",
    "HttpFakeBackend",
    "InMemoryNodeSink",
    "RecordedEvent",
    "ScriptedGate",
]
