"""``hyperpodrun`` / ``trainguard agent``: wires the agent's parts together and runs it.

The composition root of the agent process: parse the command line, become a child subreaper
(orphans of workers come back to us), park hot spares, load extensions, start the worker socket,
the status pusher and the HTTP server, then run the monitor loop on the main thread until
``/shutdown`` or SIGTERM.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence

from trainguard import constants as c
from trainguard.agent.callback import CallbackPusher
from trainguard.agent.config import AgentConfig, parse_config
from trainguard.agent.extensions import ExtensionContext, load_extensions
from trainguard.agent.processes import become_subreaper
from trainguard.agent.runtime import ElasticAgent, spare_environment
from trainguard.agent.server import ServerThread, build_app
from trainguard.errors import TrainguardError, UsageError

log = logging.getLogger("trainguard.agent")


def main(argv: Sequence[str] | None = None) -> int:
    """Run an agent; returns the process exit code (2 for a bad command line)."""
    logging.basicConfig(
        level=os.environ.get("LOGLEVEL", "INFO").upper(),
        format="[%(asctime)s] %(name)s %(levelname)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = parse_config(list(sys.argv[1:] if argv is None else argv), os.environ)
    except UsageError as exc:
        print(f"hyperpodrun: error: {exc}", file=sys.stderr)
        return 2
    try:
        serve(config)
    except TrainguardError as exc:
        print(f"hyperpodrun: error: {exc}", file=sys.stderr)
        return 1
    return 0


def serve(config: AgentConfig) -> None:
    """Run the agent described by ``config`` until it is shut down."""
    os.environ.pop(c.ENV_AGENT_TOKEN, None)  # workers and scripts must not inherit it
    if not become_subreaper():
        log.warning("could not become a child subreaper: orphans of workers may escape")
    agent = ElasticAgent(config, pod=os.environ.get(c.ENV_POD_NAME), spares=_spares(config))
    context = ExtensionContext(
        sockets=agent.sockets,
        shm_dir=agent.shm_dir,
        token=config.token,
        status=agent.core.snapshot,
        trainguard=lambda: agent.core.extension,
    )
    try:
        for extension in load_extensions(os.environ):
            extension(context)
        agent.sockets.start()
        pusher = CallbackPusher(pod=agent.core.pod, token=config.token, url=_callback_url(agent))
        agent.core.add_listener(pusher)
        server = ServerThread(
            build_app(agent, token=config.token, routers=context.routers),
            host=config.server_host,
            port=config.server_port,
            log_level=config.server_log_level,
            shutdown_timeout=config.server_shutdown_timeout,
        )
        port = server.start()
    except BaseException:
        agent.close()
        raise
    log.info("agent of pod %s serving on %s:%d", agent.core.pod, config.server_host, port)
    try:
        agent.run()
    finally:
        pusher.close()
        server.stop(timeout=min(config.server_shutdown_timeout, 10.0))


def _spares(config: AgentConfig) -> object | None:
    if not config.hot_spares:
        return None
    from trainguard.agent.spares import SparePool  # noqa: PLC0415 (only with --hot-spares)

    pool = SparePool(size=config.nproc, env=spare_environment(config), preload=config.spare_preload)
    pool.fill()
    return pool


def _callback_url(agent: ElasticAgent) -> Callable[[], str | None]:
    fallback = os.environ.get(c.ENV_AGENT_CALLBACK_URL) or None

    def url() -> str | None:
        extension = agent.core.extension
        return (extension.callback_url if extension else None) or fallback

    return url
