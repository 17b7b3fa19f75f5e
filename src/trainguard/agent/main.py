"""``hyperpodrun`` / ``trainguard agent``: wires the agent's parts together and runs it.

The composition root of the agent process: parse the command line, become a child subreaper
(orphans of workers come back to us), park hot spares, load extensions, start the worker socket,
the status pusher and the HTTP server, then run the monitor loop on the main thread until
``/shutdown`` or SIGTERM; last, kill whatever still runs below the agent, so nothing it started
(or was starting) outlives it.

The zygote (the process that forks workers, torch imported) is started before this process
parses its command line with torchrun's parser and imports its own heavy parts
(``torch.distributed.elastic``, uvicorn): the imports run side by side instead of one after the
other, the largest serial wait of a job's boot (issue 18, `early_zygote`). So this module
imports only light modules at the top; `serve` imports the rest.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from trainguard import constants as c
from trainguard import heap
from trainguard.agent.config import AgentConfig, parse_config
from trainguard.agent.early_zygote import adopt, start_early, zygote_env
from trainguard.agent.zygote_client import ZygoteKeeper
from trainguard.errors import TrainguardError, UsageError
from trainguard.proctree import become_subreaper, stop_descendants

if TYPE_CHECKING:
    from trainguard.agent.runtime import ElasticAgent

log = logging.getLogger("trainguard.agent")


def main(argv: Sequence[str] | None = None) -> int:
    """Run an agent; returns the process exit code (2 for a bad command line)."""
    logging.basicConfig(
        level=os.environ.get("LOGLEVEL", "INFO").upper(),
        format="[%(asctime)s] %(name)s %(levelname)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = list(sys.argv[1:] if argv is None else argv)
    early = start_early(args, os.environ)  # before torchrun's parser imports torch
    try:
        config = parse_config(args, os.environ)
    except UsageError as exc:
        if early is not None:
            early.close()
        print(f"hyperpodrun: error: {exc}", file=sys.stderr)
        return 2
    try:
        serve(config, early_zygote=early)
    except TrainguardError as exc:
        print(f"hyperpodrun: error: {exc}", file=sys.stderr)
        return 1
    finally:
        heap.freeze()  # torch's objects need no last collection at exit: `trainguard.heap`
    return 0


def serve(config: AgentConfig, *, early_zygote: ZygoteKeeper | None = None) -> None:
    """Run the agent described by ``config`` until it is shut down.

    ``early_zygote``: the one `start_early` started; it is used if it fits ``config``.
    """
    os.environ.pop(c.ENV_AGENT_TOKEN, None)  # workers and scripts must not inherit it
    if not become_subreaper():
        log.warning("could not become a child subreaper: orphans of workers may escape")
    # Before the heavy imports: it imports torch while we import the rest. None with
    # --cold-start, with --hot-spares (parked spares are the fast path then: a zygote importing
    # torch beside them would only slow the node's boot) or when workers are no Python scripts.
    zygotes = adopt(early_zygote, config)
    try:
        _serve(config, zygotes)
    except BaseException:
        if zygotes is not None:
            zygotes.close()
        raise


def _serve(config: AgentConfig, zygotes: ZygoteKeeper | None) -> None:
    # The heavy parts, imported after the zygote started (see the module docstring).
    from trainguard.agent.callback import CallbackPusher  # noqa: PLC0415
    from trainguard.agent.extensions import ExtensionContext, load_extensions  # noqa: PLC0415
    from trainguard.agent.runtime import ElasticAgent  # noqa: PLC0415
    from trainguard.agent.server import ServerThread, build_app  # noqa: PLC0415
    from trainguard.agent.signals import signal_router  # noqa: PLC0415

    agent = ElasticAgent(
        config, pod=os.environ.get(c.ENV_POD_NAME), spares=_spares(config), zygotes=zygotes
    )
    context = ExtensionContext(
        sockets=agent.sockets,
        shm_dir=agent.shm_dir,
        token=config.token,
        status=agent.core.snapshot,
        trainguard=lambda: agent.core.extension,
    )
    try:
        if config.token:  # never without auth: it signals processes
            context.add_router(signal_router())
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
        _stop_leftovers()
        raise
    log.info("agent of pod %s serving on %s:%d", agent.core.pod, config.server_host, port)
    try:
        agent.run()
    finally:
        _stop_leftovers()
        pusher.close()
        server.stop(timeout=min(config.server_shutdown_timeout, 10.0))


def _stop_leftovers() -> None:
    """Kill whatever still runs below the agent once it stopped its workers and helpers (a
    daemon a worker left, a process that escaped a failed start). The agent is a child
    subreaper, so all of them are its descendants; none may outlive it (they would keep
    ports and GPUs)."""
    left = stop_descendants()
    if left:
        log.warning("killed %d processes left below the agent", left)


def _spares(config: AgentConfig) -> object | None:
    if not config.hot_spares:
        return None
    from trainguard.agent.spare_pool import SparePool  # noqa: PLC0415 (only with --hot-spares)

    pool = SparePool(size=config.nproc, env=spare_environment(config), preload=config.spare_preload)
    pool.fill()
    return pool


def spare_environment(config: AgentConfig) -> dict[str, str]:
    """Environment of parked hot spares (as of the zygote): the agent's plus the
    rendezvous-free worker variables."""
    return zygote_env(nproc=config.nproc, env=os.environ)


def _callback_url(agent: ElasticAgent) -> Callable[[], str | None]:
    fallback = os.environ.get(c.ENV_AGENT_CALLBACK_URL) or None

    def url() -> str | None:
        extension = agent.core.extension
        return (extension.callback_url if extension else None) or fallback

    return url
