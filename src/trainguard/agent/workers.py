"""One start's worth of worker processes, launched and stopped with torch.distributed.elastic.

Launching is torch's: ``start_processes`` with ``DefaultLogsSpecs`` gives each worker its
environment, its error file, its ``stdout.log``/``stderr.log`` under
``<log_dir>/<run_id>_*/attempt_<faultCount>/<local_rank>/`` and the tee of those files to the
agent's own stdout/stderr with a ``[rank]`` prefix (workers write to files, so they never block
when nobody reads the agent's output). Hot spares plug in as a torch ``SubprocessContext``
too (`trainguard.agent.spares`).

What we add is detection and stopping. torch's ``PContext.wait`` closes every worker before it
returns a failure, and its close waits up to 30 s per stubborn worker; an agent must report a
crash within 200 ms instead. So `WorkerGroup.poll` reads the exit codes itself (``Popen.poll``)
and leaves the other workers alone, and `WorkerGroup.stop` signals whole process groups plus
every descendant (orphans included, the agent being a child subreaper), escalates to SIGKILL
after the timeout and reaps everything, before torch's ``close`` tidies files and tail threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psutil
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, PContext, start_processes
from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

from trainguard.agent.logs import tail_lines
from trainguard.agent.processes import descendants, reap_orphans, signal_name, signal_tree

log = logging.getLogger(__name__)
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class WorkerExit:
    """A worker that exited: its code (negative = killed by that signal) and torch's message."""

    local_rank: int
    pid: int
    exitcode: int
    message: str

    @property
    def signal(self) -> str | None:
        """``SIGKILL`` for exit code -9, None for a normal exit."""
        return signal_name(self.exitcode)


@dataclass(frozen=True)
class LaunchSpec:
    """What to run in every local rank.

    Attributes:
        name: torch's name for the process context (the role).
        entrypoint: the program (``sys.executable`` or the binary given with ``--no-python``).
        args: its arguments (``-u script.py ...``), the same for every rank.
        envs: environment per local rank (on top of the agent's own).
        log_prefixes: line prefix per local rank in the agent's output.
    """

    name: str
    entrypoint: str
    args: tuple[str, ...]
    envs: Mapping[int, Mapping[str, str]]
    log_prefixes: Mapping[int, str]


class WorkerGroup:
    """The worker processes of one start.

    Args:
        context: torch's started process context.
    """

    def __init__(self, context: PContext) -> None:
        self._context = context
        self._reported: set[int] = set()
        self._succeeded: set[int] = set()
        self.closed = False

    @classmethod
    def launch(
        cls, spec: LaunchSpec, *, logs: DefaultLogsSpecs, spares: Sequence[Any] | None = None
    ) -> WorkerGroup:
        """Start the workers (through parked hot spares when ``spares`` are given)."""
        args = dict.fromkeys(spec.envs, spec.args)
        envs = {rank: dict(env) for rank, env in spec.envs.items()}
        prefixes = dict(spec.log_prefixes)
        if spares is None:
            context = start_processes(
                name=spec.name,
                entrypoint=spec.entrypoint,
                args=args,
                envs=envs,
                logs_specs=logs,
                log_line_prefixes=prefixes,
            )
            return cls(context)
        from trainguard.agent.spares import SpareContext  # noqa: PLC0415 (hot spares only)

        spare_context = SpareContext(
            spares=spares,
            name=spec.name,
            entrypoint=spec.entrypoint,
            args=args,
            envs=envs,
            logs_specs=logs,
            log_line_prefixes=prefixes,
        )
        try:
            spare_context.start()
        except Exception:
            spare_context.close(timeout=0)
            raise
        return cls(spare_context)

    # --- facts --------------------------------------------------------------------------------

    @property
    def _handlers(self) -> dict[int, Any]:
        handlers: dict[int, Any] = getattr(self._context, "subprocess_handlers", {})
        return handlers

    def popen(self, local_rank: int) -> subprocess.Popen[bytes]:
        """The ``Popen`` of a local rank."""
        proc: subprocess.Popen[bytes] = self._handlers[local_rank].proc
        return proc

    @property
    def nprocs(self) -> int:
        """Workers in the group."""
        return int(self._context.nprocs)

    def pids(self) -> list[int]:
        """Worker pids in local-rank order."""
        return [self.popen(rank).pid for rank in range(self.nprocs)]

    def log_file(self, local_rank: int, stream: str = "stdout") -> str | None:
        """Path of a worker's ``stdout.log`` / ``stderr.log`` (None when not redirected)."""
        paths: Mapping[int, str] = getattr(self._context, f"{stream}s")
        path = paths.get(local_rank)
        return path or None

    def all_succeeded(self) -> bool:
        """Every worker exited with code 0."""
        return len(self._succeeded) == self.nprocs

    # --- monitoring ---------------------------------------------------------------------------

    def poll(self) -> list[WorkerExit]:
        """Workers that exited non-zero since the last call (successes are only counted)."""
        exits: list[WorkerExit] = []
        for rank in range(self.nprocs):
            if rank in self._reported:
                continue
            proc = self.popen(rank)
            code = proc.poll()
            if code is None:
                continue
            self._reported.add(rank)
            if code == 0:
                self._succeeded.add(rank)
                continue
            error_file = self._context.error_files.get(rank, "")
            message = _message(rank, proc.pid, code, error_file)
            if (
                code > 0
                and not os.path.isfile(error_file or "")
                and (last := self._last_error(rank))
            ):
                message = f"{message}: {last}"
            exits.append(WorkerExit(rank, proc.pid, code, message))
        return exits

    # --- stopping -----------------------------------------------------------------------------

    def stop(self, *, sig: signal.Signals, timeout: float, keep: Sequence[int] = ()) -> None:
        """Stop every worker and everything they started; never leaves a zombie.

        Args:
            sig: first signal (the agent's ``--shutdown-signal``, or SIGUSR1 for graceful stops).
            timeout: seconds to wait after ``sig`` before SIGKILL.
            keep: pids that are not workers (parked hot spares) and must survive.

        Also after the workers exited on their own: what they left behind is killed too.
        """
        leaders = [p for p in self.pids() if self.popen(self._rank_of(p)).poll() is None]
        others = descendants(exclude=keep)
        signal_tree(leaders, others, sig)
        deadline = time.monotonic() + timeout
        while self._alive(keep) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            reap_orphans(keep=self._owned(keep))
        for _ in range(50):
            survivors = descendants(exclude=keep)
            if not survivors and not self._alive(keep):
                break
            signal_tree(self.pids(), survivors, signal.SIGKILL)
            psutil.wait_procs(survivors, timeout=0.2)
            reap_orphans(keep=self._owned(keep))
        for rank in range(self.nprocs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen(rank).wait(timeout=5)
        self.close()

    def close(self) -> None:
        """torch's close: tail threads and files (workers are gone or get SIGKILL at once)."""
        if not self.closed:
            self.closed = True
            self._context.close(death_sig=signal.SIGKILL, timeout=0)

    def _last_error(self, rank: int) -> str:
        """The last line of a worker's stderr (why ``python`` itself gave up, say)."""
        path = self.log_file(rank, "stderr")
        lines = tail_lines(path, 1) if path else []
        return lines[-1].strip()[:500] if lines else ""

    def _rank_of(self, pid: int) -> int:
        return self.pids().index(pid)

    def _owned(self, keep: Sequence[int]) -> set[int]:
        return set(self.pids()) | set(keep)

    def _alive(self, keep: Sequence[int]) -> bool:
        if any(self.popen(rank).poll() is None for rank in range(self.nprocs)):
            return True
        return bool(descendants(exclude=keep))


def _message(rank: int, pid: int, code: int, error_file: str) -> str:
    """torch's error-file message when the worker wrote one, else how it ended."""
    if error_file and os.path.isfile(error_file):
        try:
            failure = ProcessFailure(local_rank=rank, pid=pid, exitcode=code, error_file=error_file)
            return str(failure.message)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("unreadable error file %s: %s", error_file, exc)
    name = signal_name(code)
    return f"killed by {name}" if name else f"exited with code {code}"
