"""The agent's command line: torchrun's arguments plus HyperPod's ``hyperpodrun`` additions.

torchrun's own parser (``torch.distributed.run.get_args_parser``) is the base, as in HyperPod's
agent, so every manifest written for ``torchrun`` or ``hyperpodrun`` parses unchanged. What the
agent does not do is refused or ignored out loud: ``--max-restarts`` (the controller restarts,
not the agent) is ignored with a warning, elastic ``--nnodes MIN:MAX`` and
``--inprocess-restart`` are refused with an error.

Environment variables set by a backend beat the flags (the local backend picks ports and
directories per pod): ``TRAINGUARD_AGENT_PORT``, ``TRAINGUARD_AGENT_HOST``,
``TRAINGUARD_LOG_DIR``, ``TRAINGUARD_AGENT_TOKEN``, ``TRAINGUARD_SHM_DIR``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainguard import constants as c
from trainguard.agent.protocol import DEFAULT_PORT
from trainguard.agent.spare_worker import DEFAULT_PRELOAD, parse_preload
from trainguard.errors import UsageError
from trainguard.permissions import check_secret_file

log = logging.getLogger(__name__)

MONITOR_INTERVAL = 0.05
DEFAULT_SHUTDOWN_TIMEOUT = 30.0
EPILOG = f"""\
environment (beats the matching flag): {c.ENV_SPARE_REFILL_DELAY} (seconds after a start before
hot spares are refilled, default 5), {c.ENV_COLD_START}=1 (--cold-start),
{c.ENV_AGENT_PORT} (--server-port), {c.ENV_AGENT_HOST} (--server-host), {c.ENV_LOG_DIR}
(--log-dir), {c.ENV_AGENT_TOKEN} (--token-file), {c.ENV_SHM_DIR} (node-local memory dir for
checkpoints; a private dir under /dev/shm otherwise), {c.ENV_POD_NAME}, {c.ENV_JOB_NAME}."""


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent needs from its command line and environment.

    Attributes:
        nproc: workers per node.
        nnodes: nodes in the job (the controller may send another count in /start).
        entrypoint: program every worker runs.
        args: its arguments (``-u script.py ...``).
        role: torchrun's ``--role`` (worker env ``ROLE_NAME``).
        run_id: torchrun's ``--rdzv-id`` (``TORCHELASTIC_RUN_ID``).
        log_dir: root of the per-rank log files (a temp dir when None).
        shutdown_signal: first signal when stopping workers.
        shutdown_timeout: seconds before SIGKILL follows it.
        server_host: HTTP bind address.
        server_port: HTTP port (0 = any free port).
        server_log_level: uvicorn's log level.
        server_shutdown_timeout: seconds uvicorn waits for requests when the agent exits.
        token: bearer token every request must carry (None only with --insecure-no-auth).
        pre_train: script and opaque argument string run before every start.
        post_train: script and argument string run after the workers all succeed.
        hot_spares: keep pre-forked workers with torch imported.
        cold_start: start every worker as a new interpreter; by default the agent's zygote
            (torch imported, `trainguard.agent.zygote`) forks them.
        spare_preload: modules every hot spare imports while parked.
        shm_dir: node-local memory directory for checkpoints (None: make a private one).
        monitor_interval: seconds between two looks at the workers where their exits cannot be
            waited for (no pidfds; `trainguard.agent.pacing`).
        max_restarts: torchrun's value, only reported as ``TORCHELASTIC_MAX_RESTARTS``.
    """

    nproc: int
    nnodes: int
    entrypoint: str
    args: tuple[str, ...]
    role: str = "default"
    run_id: str = "none"
    log_dir: str | None = None
    shutdown_signal: signal.Signals = signal.SIGKILL
    shutdown_timeout: float = 30.0
    server_host: str = "0.0.0.0"
    server_port: int = DEFAULT_PORT
    server_log_level: str = "info"
    server_shutdown_timeout: float = 300.0
    token: str | None = None
    pre_train: tuple[str, str] | None = None
    post_train: tuple[str, str] | None = None
    hot_spares: bool = False
    cold_start: bool = False
    spare_preload: tuple[str, ...] = DEFAULT_PRELOAD
    shm_dir: str | None = None
    monitor_interval: float = MONITOR_INTERVAL
    max_restarts: int = 0


def build_parser() -> argparse.ArgumentParser:
    """torchrun's parser with the agent's arguments added."""
    from torch.distributed.run import get_args_parser  # noqa: PLC0415 (torch is heavy)

    parser = get_args_parser()
    parser.prog = "hyperpodrun"
    parser.description = "trainguard elastic agent (torchrun arguments + hyperpodrun's)."
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    _add(parser, "--shutdown-signal", default="SIGKILL", help="first signal to stop workers")
    _add(parser, "--server-host", default="0.0.0.0", help="HTTP bind address")
    _add(parser, "--server-port", type=int, default=DEFAULT_PORT, help="HTTP port")
    _add(parser, "--server-log-level", default="info", help="uvicorn log level")
    _add(parser, "--server-shutdown-timeout", type=float, default=300.0, help="uvicorn stop")
    _add(parser, "--pre-train-script", default=None, help="run before every start")
    _add(parser, "--pre-train-args", default="", help="its arguments (one string)")
    _add(parser, "--post-train-script", default=None, help="run after the workers succeed")
    _add(parser, "--post-train-args", default="", help="its arguments (one string)")
    _add(parser, "--inprocess-restart", action="store_true", help="not supported; refused")
    _add(parser, "--inprocess-timeout", type=float, default=None, help="not supported")
    _add(parser, "--token-file", default=None, help=f"bearer token file ({c.ENV_AGENT_TOKEN})")
    _add(parser, "--insecure-no-auth", action="store_true", help="serve without a token")
    _add(parser, "--hot-spares", action="store_true", help="keep pre-forked, torch-loaded workers")
    _add(
        parser,
        "--cold-start",
        action="store_true",
        help="start each worker as a new interpreter instead of forking it from the zygote",
    )
    _add(
        parser,
        "--spare-preload",
        default=",".join(DEFAULT_PRELOAD),
        help="comma-separated modules hot spares import while parked",
    )
    return parser


def _add(parser: argparse.ArgumentParser, flag: str, **options: Any) -> None:
    """Add ``--a-b`` with its ``--a_b`` twin, as torchrun spells its own flags."""
    parser.add_argument(flag, flag.replace("-", "_").replace("__", "--", 1), **options)


def parse_config(argv: Sequence[str], env: Mapping[str, str]) -> AgentConfig:
    """The agent's configuration from ``argv`` (without the program name) and ``env``.

    Raises:
        UsageError: a refused option, a malformed value, or no token without
            ``--insecure-no-auth``.
    """
    args = build_parser().parse_args(list(argv))
    if args.inprocess_restart:
        raise UsageError(
            "--inprocess-restart is not supported by trainguard's agent; restarts are "
            "process-level (drop the flag)"
        )
    if args.max_restarts:
        log.warning(
            "--max-restarts=%s is ignored: the controller restarts workers", args.max_restarts
        )
    return AgentConfig(
        nproc=_nproc(args.nproc_per_node),
        nnodes=_nnodes(str(args.nnodes)),
        entrypoint=_entrypoint(args),
        args=_script_args(args),
        role=args.role,
        run_id=str(env.get(c.ENV_JOB_NAME) or args.rdzv_id),
        log_dir=env.get(c.ENV_LOG_DIR) or args.log_dir or None,
        shutdown_signal=_signal(args.shutdown_signal),
        shutdown_timeout=_timeout(args.shutdown_timeout),
        server_host=env.get(c.ENV_AGENT_HOST) or args.server_host,
        server_port=_port(env.get(c.ENV_AGENT_PORT), args.server_port),
        server_log_level=args.server_log_level,
        server_shutdown_timeout=args.server_shutdown_timeout,
        token=_token(env, args.token_file, insecure=args.insecure_no_auth),
        pre_train=(args.pre_train_script, args.pre_train_args) if args.pre_train_script else None,
        post_train=(
            (args.post_train_script, args.post_train_args) if args.post_train_script else None
        ),
        hot_spares=args.hot_spares,
        cold_start=args.cold_start or env.get(c.ENV_COLD_START, "") not in {"", "0"},
        spare_preload=parse_preload(args.spare_preload),
        shm_dir=env.get(c.ENV_SHM_DIR) or None,
        monitor_interval=min(float(args.monitor_interval), MONITOR_INTERVAL),
        max_restarts=int(args.max_restarts),
    )


def _nproc(value: str) -> int:
    from torch.distributed.run import determine_local_world_size  # noqa: PLC0415

    try:
        return int(determine_local_world_size(str(value)))
    except ValueError as exc:
        raise UsageError(f"--nproc-per-node: {exc}") from exc


def _nnodes(value: str) -> int:
    low, _, high = value.partition(":")
    try:
        minimum, maximum = int(low), int(high or low)
    except ValueError as exc:
        raise UsageError(f"--nnodes must be an integer, got {value!r}") from exc
    if minimum != maximum:
        raise UsageError(
            f"--nnodes {value}: elastic node counts are not supported by the agent; the "
            "controller restarts the job with a new node count instead"
        )
    if minimum < 1:
        raise UsageError(f"--nnodes must be at least 1, got {value!r}")
    return minimum


def _entrypoint(args: argparse.Namespace) -> str:
    if not args.training_script:
        raise UsageError("no training script given")
    return str(args.training_script) if args.no_python else sys.executable


def _script_args(args: argparse.Namespace) -> tuple[str, ...]:
    rest = tuple(str(a) for a in args.training_script_args)
    if args.no_python:
        return rest
    if args.module:
        return ("-u", "-m", str(args.training_script), *rest)
    return ("-u", str(args.training_script), *rest)


def _signal(name: str) -> signal.Signals:
    key = name.upper() if name.upper().startswith("SIG") else f"SIG{name.upper()}"
    try:
        return signal.Signals[key]
    except KeyError:
        raise UsageError(f"--shutdown-signal: unknown signal {name!r}") from None


def _timeout(value: str | float | None) -> float:
    """torchrun's ``--shutdown-timeout`` (default None here: HyperPod's documented 30 s)."""
    if value is None:
        return DEFAULT_SHUTDOWN_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"--shutdown-timeout must be a number, got {value!r}") from None
    if seconds < 0:
        raise UsageError(f"--shutdown-timeout must not be negative, got {value}")
    return seconds


def _port(from_env: str | None, flag: int) -> int:
    if not from_env:
        return flag
    if not from_env.isdigit() or int(from_env) > 65535:
        raise UsageError(f"{c.ENV_AGENT_PORT} must be a port number, got {from_env!r}")
    return int(from_env)


def _token(env: Mapping[str, str], token_file: str | None, *, insecure: bool) -> str | None:
    token = env.get(c.ENV_AGENT_TOKEN)
    if not token and token_file:
        check_secret_file(token_file, what="--token-file")
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise UsageError(f"--token-file {token_file}: {exc.strerror}") from exc
        if not token:
            raise UsageError(f"--token-file {token_file} is empty")
    if token:
        return token
    if insecure:
        log.warning("serving the agent API WITHOUT authentication (--insecure-no-auth)")
        return None
    raise UsageError(
        f"no API token: set {c.ENV_AGENT_TOKEN} or --token-file "
        "(or --insecure-no-auth to serve without one)"
    )
