"""The agent's HTTP app in-process over a bare `AgentCore`: routes, auth and validation, with
the test playing the monitor loop (it takes what the routes left pending from the core).

One setup for the server's unit tests, the signal route's, and the HyperPod conformance and
``hyperpod-elastic-agent`` package tests, which drive the same app with HyperPod's bodies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from fastapi import APIRouter
from fastapi.testclient import TestClient

from trainguard.agent.protocol import UpdateRequest
from trainguard.agent.server import build_app
from trainguard.agent.state import AgentCore
from trainguard.policy.log_rules import parse_rules
from trainguard.testing import FakeClock


class AppControls:
    """What the routes need of the agent runtime (`trainguard.agent.server.Controls`): the
    core on a fake clock, the real rule check, no worker logs.

    Args:
        pod: the pod name the status reports.
        pid: the agent's pid (the signal route signals it and its descendants only).
    """

    def __init__(self, *, pod: str = "pod-0", pid: int = 1) -> None:
        self.core = AgentCore(clock=FakeClock(), pod=pod, pid=pid)

    def check_rules(self, request: UpdateRequest) -> None:
        parse_rules(request.log_monitoring_configuration, source="test")

    def logs(self, *, rank: int, tail: int, stream: str) -> list[str]:
        return []


@contextmanager
def app_client(
    controls: AppControls,
    *,
    token: str | None,
    routers: Sequence[APIRouter] = (),
    authorized: bool = False,
) -> Iterator[TestClient]:
    """A client of the app over ``controls``; ``authorized``: it sends ``token`` itself."""
    headers = {"Authorization": f"Bearer {token}"} if authorized and token else None
    with TestClient(build_app(controls, token=token, routers=routers), headers=headers) as client:
        yield client
