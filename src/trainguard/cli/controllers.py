"""Every ``trainguard controller`` process of a local cluster, so ``cluster down`` stops them all.

The lease names one controller, but a controller stalled past its lease (SIGSTOP, a frozen VM)
is still a process after its successor took over, and ``cluster down`` used to SIGTERM only the
lease holder and return 0 with both alive. Each controller process therefore registers itself
as ``$TRAINGUARD_HOME/controllers/<pid>.json`` (pid and process start time, so a reused pid is
never signalled) and removes the file when it exits; ``cluster down`` stops every registered
process that still runs: SIGCONT (a stopped process cannot act on SIGTERM), SIGTERM, and
SIGKILL after `STOP_TIMEOUT`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import psutil

from trainguard.liveness import process_alive

REGISTRY_DIR = "controllers"
"""Directory under ``$TRAINGUARD_HOME`` holding one file per running controller process."""
REGISTRY_DIR_MODE = 0o700
"""Only the cluster's owner may list or plant controller pids."""
STOP_TIMEOUT = 10.0
"""Seconds a controller gets between SIGTERM and SIGKILL in ``cluster down``."""


def register(home: Path) -> Path:
    """Record this process as a controller of the cluster at ``home``; returns its file."""
    directory = home / REGISTRY_DIR
    directory.mkdir(mode=REGISTRY_DIR_MODE, parents=True, exist_ok=True)
    pid = os.getpid()
    entry = directory / f"{pid}.json"
    entry.write_text(json.dumps({"pid": pid, "create_time": psutil.Process(pid).create_time()}))
    return entry


def unregister(entry: Path) -> None:
    """Remove this process's file (at exit)."""
    entry.unlink(missing_ok=True)


def running(home: Path) -> list[psutil.Process]:
    """The registered controllers still running (stale files are removed)."""
    found = []
    for entry in sorted((home / REGISTRY_DIR).glob("*.json")):
        process = _process(entry)
        if process is None:
            entry.unlink(missing_ok=True)
        else:
            found.append(process)
    return found


def stop_all(home: Path, *, timeout: float = STOP_TIMEOUT) -> list[int]:
    """Stop every registered controller (SIGCONT, SIGTERM, SIGKILL after ``timeout``).

    Returns:
        The pids that were running.
    """
    processes = running(home)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGCONT)
            process.terminate()
    alive = _wait_exited(processes, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    _wait_exited(alive, timeout=timeout)
    for process in processes:
        (home / REGISTRY_DIR / f"{process.pid}.json").unlink(missing_ok=True)
    return [p.pid for p in processes]


def _wait_exited(processes: list[psutil.Process], *, timeout: float) -> list[psutil.Process]:
    """Wait until every process exited; returns those still running after ``timeout``.

    ``psutil.wait_procs`` counts an exited process its parent has not reaped yet (a zombie:
    a controller started by another process that is still alive) as running, and would wait
    the whole timeout for it; `process_alive` does not.
    """
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if process_alive(p.pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if process_alive(p.pid)]
    return alive


def _process(entry: Path) -> psutil.Process | None:
    try:
        recorded = json.loads(entry.read_text())
        process = psutil.Process(int(recorded["pid"]))
        if process.create_time() != float(recorded["create_time"]):
            return None
        return process if process.status() != psutil.STATUS_ZOMBIE else None
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return None
