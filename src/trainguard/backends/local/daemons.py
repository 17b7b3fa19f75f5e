"""Background processes of the local cluster: the controller, one health agent per node, and
the renderer of a finished job's report.

On Kubernetes a Deployment runs the controller and a DaemonSet the node health agents; on the
local cluster ``trainguard cluster up`` asks this module for the same processes. Starting
processes is a backend's job (the ``layers`` import contract keeps ``subprocess`` out of the CLI
and the controller), so the CLI commands call `start_controller`, `start_health_agents` and
`stop_health_agents` and never run ``Popen`` themselves. Each process is started in its own
session with stdin closed and its output appended to a log file under ``$TRAINGUARD_HOME``, so
it outlives the command that started it and a terminal's Ctrl-C does not reach it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from trainguard import constants as c
from trainguard.names import safe_join
from trainguard.permissions import open_private

CONTROLLER_LOG = "controller.log"
"""The background controller's output, under ``$TRAINGUARD_HOME``."""
HEALTH_AGENT_LOG = "health-agent.log"
"""A node health agent's output, under ``$TRAINGUARD_HOME/nodes/<node>/``."""
HEALTH_AGENT_PID = "health-agent.pid"
"""A node health agent's pid, under ``$TRAINGUARD_HOME/nodes/<node>/``."""
HEALTH_AGENT_CHECKS = "DiskSpace,MemoryPressure,KernelLog"
"""The checks a simulated node's health agent runs (no GPU checks: the nodes have none)."""
HEALTH_AGENT_STOP_TIMEOUT = 10.0
"""Seconds a health agent gets between SIGTERM and SIGKILL in `stop_health_agents`."""


@dataclass(frozen=True)
class StartedProcess:
    """A background process this module started, and where its output goes."""

    process: subprocess.Popen[bytes]
    log: Path
    log_start: int
    """Size of ``log`` before the process started: its own output begins here."""

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def exit_code(self) -> int | None:
        """The exit code once the process has exited (it is reaped), else None."""
        return self.process.poll()

    def log_tail(self, lines: int) -> list[str]:
        """The last ``lines`` lines this process wrote to its log."""
        text = self.log.read_bytes()[self.log_start :].decode(errors="replace")
        return text.splitlines()[-lines:]


def start_controller(home: Path, *, metrics_port: int | None = None) -> StartedProcess:
    """Start ``trainguard controller`` for the cluster at ``home`` in the background.

    The process registers itself (`trainguard.cli.controllers`) and takes the lease; waiting
    for that is the caller's business.
    """
    command = [sys.executable, "-m", "trainguard", "controller"]
    if metrics_port is not None:
        command += ["--metrics-port", str(metrics_port)]
    return _start(command, log=home / CONTROLLER_LOG, home=home)


def simulated_kernel_log(home: Path, node: str) -> Path:
    """The kernel log of simulated ``node``: append Xid lines here to inject a GPU fault."""
    return safe_join(home / "nodes", node, what="node") / "kern.log"


def start_health_agents(home: Path, nodes: Iterable[str]) -> list[int]:
    """Start one background ``trainguard health-agent`` per simulated node.

    Each follows its node's own kernel log (`simulated_kernel_log`) and its pid is written to
    ``<home>/nodes/<node>/health-agent.pid`` so `stop_health_agents` can end it.

    Returns:
        The agents' pids.
    """
    pids = []
    for node in nodes:
        kernel_log = simulated_kernel_log(home, node)
        kernel_log.parent.mkdir(parents=True, exist_ok=True)
        kernel_log.touch()
        command = [
            *(sys.executable, "-m", "trainguard", "health-agent", "--node", node),
            *("--checks", HEALTH_AGENT_CHECKS, "--kernel-log", str(kernel_log)),
            *("--interval", "5", "--kernel-interval", "1"),
        ]
        started = _start(command, log=kernel_log.parent / HEALTH_AGENT_LOG, home=home)
        (kernel_log.parent / HEALTH_AGENT_PID).write_text(str(started.pid))
        pids.append(started.pid)
    return pids


def stop_health_agents(home: Path, *, timeout: float = HEALTH_AGENT_STOP_TIMEOUT) -> int:
    """SIGTERM every health agent `start_health_agents` started under ``home`` (SIGKILL after
    ``timeout``); return how many were running. Pid files are removed; a pid now owned by
    another program is left alone."""
    stopped = 0
    for pid_file in sorted((home / "nodes").glob(f"*/{HEALTH_AGENT_PID}")):
        pid = int(pid_file.read_text().strip())
        pid_file.unlink()
        try:
            proc = psutil.Process(pid)
            if "health-agent" not in proc.cmdline():
                continue
            proc.terminate()
            proc.wait(timeout=timeout)
            stopped += 1
        except psutil.NoSuchProcess:
            continue
        except psutil.TimeoutExpired:
            proc.kill()
            stopped += 1
    return stopped


def start_report_renderer(home: Path, args: list[str], *, log: Path) -> int:
    """Start ``python -m trainguard.cli.report_render ARGS`` in the background and return its
    pid: the picture of a finished job's report, which ``trainguard run`` does not wait for."""
    command = [sys.executable, "-m", "trainguard.cli.report_render", *args]
    return _start(command, log=log, home=home).pid


def _start(command: list[str], *, log: Path, home: Path) -> StartedProcess:
    log.parent.mkdir(parents=True, exist_ok=True)
    log_start = log.stat().st_size if log.exists() else 0
    with os.fdopen(open_private(log, os.O_WRONLY | os.O_APPEND), "ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, c.ENV_HOME: str(home)},
        )
    return StartedProcess(process=process, log=log, log_start=log_start)
