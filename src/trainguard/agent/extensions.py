"""Plug-ins for the agent: extra worker-socket handlers and extra HTTP routes.

Checkpoint replication (peer copies of the memory tier, ``ckpt_fetch`` from peers) lives in
`trainguard.checkpoint`, which the agent must not import; instead it registers itself here.
An extension is a callable ``register(context)`` named as ``module:function`` in the
``TRAINGUARD_AGENT_EXTENSIONS`` environment variable (comma-separated) or published under the
``trainguard.agent_extensions`` entry-point group. It runs once, before the server starts, and
may add socket handlers and FastAPI routers (guarded by the agent's token like every route).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from trainguard import constants as c
from trainguard.agent.protocol import AgentStatus, TrainguardStart
from trainguard.agent.sockets import Handler, SocketServer
from trainguard.errors import UsageError

log = logging.getLogger(__name__)


@dataclass
class ExtensionContext:
    """What an extension may use and extend.

    Attributes:
        sockets: the worker socket server (`SocketServer.register` adds a message type).
        routers: FastAPI routers to mount on the agent's app.
        shm_dir: node-local memory directory for checkpoints.
        token: the agent's bearer token (for calls to peer agents), or None.
        status: returns the agent's current status.
        trainguard: returns the latest ``trainguard`` object of /start or /update (job, peers).
    """

    sockets: SocketServer
    shm_dir: Path
    token: str | None
    status: Callable[[], AgentStatus]
    trainguard: Callable[[], TrainguardStart | None]
    routers: list[APIRouter] = field(default_factory=list)

    def add_socket_handler(self, kind: str, handler: Handler) -> None:
        """Answer worker messages of type ``kind`` with ``handler(message) -> reply fields``."""
        self.sockets.register(kind, handler)

    def add_router(self, router: APIRouter) -> None:
        """Mount ``router`` on the agent's HTTP app."""
        self.routers.append(router)


Extension = Callable[[ExtensionContext], Any]


def load_extensions(env: Mapping[str, str]) -> list[Extension]:
    """Extensions named in the environment, then those published as entry points.

    Raises:
        UsageError: a name in the environment variable cannot be imported.
    """
    found: list[Extension] = []
    for name in filter(None, (n.strip() for n in env.get(c.ENV_AGENT_EXTENSIONS, "").split(","))):
        found.append(_resolve(name))
    for entry in entry_points(group=c.AGENT_EXTENSIONS_ENTRY_POINT):
        found.append(entry.load())
    return found


def _resolve(name: str) -> Extension:
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
        extension: Extension = getattr(module, attribute or "register")
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"{c.ENV_AGENT_EXTENSIONS}: cannot load {name!r}: {exc}") from exc
    return extension
