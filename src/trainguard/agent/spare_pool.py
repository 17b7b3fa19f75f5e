"""Hot spares: pre-forked worker processes, torch already imported, waiting for a start.

A cold restart pays for a fresh interpreter and ``import torch`` in every worker (about two
seconds each, more when the node's cores are busy). With ``--hot-spares`` the agent keeps
``nproc`` parked processes (`trainguard.agent.spare_worker`, the parked process's own side) and
a start hands the job to them instead of spawning. The hand-over plugs into torch's own process
context: `SpareContext` is a ``SubprocessContext`` whose handlers adopt parked processes instead
of calling ``Popen``, so log redirection, tee, error files, polling and ``close`` are torch's
code, unchanged. The pool is refilled right after a start, while training runs, so the next
restart finds spares ready.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from torch.distributed.elastic.multiprocessing.subprocess_handler import SubprocessHandler

from trainguard.agent.spare_worker import DEFAULT_PRELOAD, PRELOAD_ENV
from trainguard.agent.workers import ColdContext
from trainguard.proctree import die_with_parent

log = logging.getLogger(__name__)

SPARE_MODULE = "trainguard.agent.spare_worker"


class SparePool:
    """Keeps ``size`` parked spare processes.

    Args:
        size: spares to keep (one per local rank).
        env: the spares' environment (the agent's plus the rendezvous-independent worker env).
        preload: modules each spare imports while parked.
    """

    def __init__(
        self, *, size: int, env: Mapping[str, str], preload: Sequence[str] = DEFAULT_PRELOAD
    ) -> None:
        self.size = size
        self._env = dict(env) | {PRELOAD_ENV: ",".join(preload)}
        self._parked: list[subprocess.Popen[bytes]] = []

    def fill(self) -> None:
        """Start spares until ``size`` are parked (does not wait for their imports)."""
        self._drop_dead()
        while len(self._parked) < self.size:
            self._parked.append(
                subprocess.Popen(
                    [sys.executable, "-m", SPARE_MODULE],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=self._env,
                    start_new_session=True,
                    # a spare dies with the agent, as a worker does (`die_with_parent`)
                    preexec_fn=functools.partial(die_with_parent, os.getpid()),  # noqa: PLW1509
                )
            )

    def take(self, count: int) -> list[subprocess.Popen[bytes]] | None:
        """``count`` parked spares, removed from the pool; None when fewer are alive."""
        self._drop_dead()
        if len(self._parked) < count:
            return None
        taken, self._parked = self._parked[:count], self._parked[count:]
        return taken

    def pids(self) -> set[int]:
        """Pids of the parked spares."""
        return {proc.pid for proc in self._parked}

    def close(self) -> None:
        """Send every parked spare away (end of input, then SIGKILL) and reap it."""
        for proc in self._parked:
            with contextlib.suppress(OSError):
                if proc.stdin:
                    proc.stdin.close()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, 9)
            proc.wait()
        self._parked = []

    def _drop_dead(self) -> None:
        alive = []
        for proc in self._parked:
            code = proc.poll()
            if code is None:
                alive.append(proc)
            else:
                log.warning("hot spare %d exited with code %d while parked", proc.pid, code)
        self._parked = alive


class _SpareHandler(SubprocessHandler):
    """A torch subprocess handler for an already running spare: sends it the job, no Popen.

    ``close`` (killpg of the session) and ``proc`` behave as torch's handler expects; the
    spare opens its log files itself, so there are no parent-side file objects to close.
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        *,
        args: tuple[Any, ...],
        env: Mapping[str, str],
        stdout: str | None,
        stderr: str | None,
        local_rank: int,
    ) -> None:
        self._stdout = None
        self._stderr = None
        self.local_rank_id = local_rank
        self.proc = proc
        job = {
            "argv": [str(a) for a in args],
            "env": os.environ.copy() | dict(env),
            "stdout": stdout or os.devnull,
            "stderr": stderr or os.devnull,
        }
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(job).encode() + b"\n")
        proc.stdin.close()


class SpareContext(ColdContext):
    """The agent's process context (`trainguard.agent.workers.ColdContext`: no torch signal
    handlers) whose workers are the given parked spares."""

    def __init__(self, *, spares: Sequence[subprocess.Popen[bytes]], **kwargs: Any) -> None:
        self._spares = list(spares)
        super().__init__(**kwargs)

    def _start(self) -> None:
        self.subprocess_handlers = {
            rank: _SpareHandler(
                self._spares[rank],
                args=self.args[rank],
                env=self.envs[rank],
                stdout=self.stdouts[rank],
                stderr=self.stderrs[rank],
                local_rank=rank,
            )
            for rank in range(self.nprocs)
        }
