"""One start's worth of worker processes, launched and stopped with torch.distributed.elastic.

Launching is torch's: a ``SubprocessContext`` with ``DefaultLogsSpecs`` gives each worker its
environment, its error file, its ``stdout.log``/``stderr.log`` under
``<log_dir>/<run_id>_*/attempt_<faultCount>/<local_rank>/`` and the tee of those files to the
agent's own stdout/stderr with a ``[rank]`` prefix (workers write to files, so they never block
when nobody reads the agent's output). The default fast path, workers forked by the agent's
zygote (`trainguard.agent.zygote_context`), and hot spares (`trainguard.agent.spare_pool`) plug
in as torch ``SubprocessContext`` subclasses; a worker is then a `WorkerProcess` that is not a
``Popen`` but waits and polls like one. A start is never cut short by a signal (`ColdContext`:
no torch signal handlers), a start that fails half-way leaves nothing running (`_started`),
and a cold worker (like a forked one or a hot spare) gets SIGKILL when the agent dies.

What we add is detection and stopping. torch's ``PContext.wait`` closes every worker before it
returns a failure, and its close waits up to 30 s per stubborn worker; an agent must report a
crash within 200 ms instead. So `WorkerGroup.poll` reads the exit codes itself (``Popen.poll``)
and leaves the other workers alone, and `WorkerGroup.stop` signals whole process groups plus
every descendant (orphans included, the agent being a child subreaper), escalates to SIGKILL
after the timeout and reaps everything, before torch's ``close`` tidies files and tail threads.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import subprocess
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psutil
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, PContext, SubprocessContext
from torch.distributed.elastic.multiprocessing.errors import ProcessFailure
from torch.distributed.elastic.multiprocessing.subprocess_handler import SubprocessHandler

from trainguard.agent.logs import tail_lines
from trainguard.agent.protocol import WorkerFailure
from trainguard.agent.tee import LogTee
from trainguard.proctree import (
    descendants,
    die_with_parent,
    reap_orphans,
    signal_name,
    signal_tree,
    stop_descendants,
)

log = logging.getLogger(__name__)
POLL_SECONDS = 0.05


class WorkerProcess(Protocol):
    """What `WorkerGroup` needs of a worker: ``Popen``, or a zygote's `ForkedProcess`."""

    pid: int

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


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

    def failure(self, global_rank: int, now: float) -> WorkerFailure:
        """This exit as the protocol reports it."""
        return WorkerFailure(
            local_rank=self.local_rank,
            global_rank=global_rank,
            exitcode=self.exitcode,
            signal=self.signal,
            time=now,
            message=self.message,
        )


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
        self._successes_taken: set[int] = set()
        self.closed = False

    @classmethod
    def launch(
        cls,
        spec: LaunchSpec,
        *,
        logs: DefaultLogsSpecs,
        spares: Sequence[Any] | None = None,
        zygote: Any = None,
        keep: Collection[int] = (),
    ) -> WorkerGroup:
        """Start the workers: through parked hot spares when ``spares`` are given, forked by
        ``zygote`` (a `Zygote`) when one is given, else cold (``Popen``).

        ``keep`` are the agent's helpers (the zygote, parked spares): when the start fails
        half-way, every other descendant of the agent is killed (`_started`).

        Raises:
            ZygoteUnavailable: the zygote could not fork them (nothing is left running).
        """
        kwargs: dict[str, Any] = {
            "name": spec.name,
            "entrypoint": spec.entrypoint,
            "args": dict.fromkeys(spec.envs, spec.args),
            "envs": {rank: dict(env) for rank, env in spec.envs.items()},
            "logs_specs": logs,
            "log_line_prefixes": dict(spec.log_prefixes),
        }
        if spares is not None:
            from trainguard.agent.spare_pool import SpareContext  # noqa: PLC0415 (hot spares)

            return cls(_started(SpareContext(spares=spares, **kwargs), keep=keep))
        if zygote is not None:
            from trainguard.agent.zygote_context import ZygoteContext  # noqa: PLC0415

            return cls(_started(ZygoteContext(zygote=zygote, **kwargs), keep=keep))
        return cls(_started(ColdContext(**kwargs), keep=keep))

    # --- facts --------------------------------------------------------------------------------

    @property
    def _handlers(self) -> dict[int, Any]:
        handlers: dict[int, Any] = getattr(self._context, "subprocess_handlers", {})
        return handlers

    def popen(self, local_rank: int) -> WorkerProcess:
        """The process (``Popen`` or `ForkedProcess`) of a local rank."""
        proc: WorkerProcess = self._handlers[local_rank].proc
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

    def take_successes(self) -> list[int]:
        """Local ranks that `poll` saw exit with code 0 since the last call."""
        fresh = sorted(self._succeeded - self._successes_taken)
        self._successes_taken.update(fresh)
        return fresh

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


def _started(context: PContext, *, keep: Collection[int]) -> PContext:
    """``context`` started; on any failure (the zygote gave up half-way, a rank could not
    start) it is closed and every descendant but ``keep`` is killed: a worker started before
    the failure may be known to no handler yet, and leading its own session it would
    outlive the agent."""
    try:
        context.start()
    except BaseException:
        with contextlib.suppress(Exception):
            context.close(death_sig=signal.SIGKILL, timeout=0)
        stop_descendants(exclude=keep)
        raise
    return context


class _ColdHandler(SubprocessHandler):
    """torch's ``Popen`` handler; the worker also dies with the agent (`die_with_parent`)."""

    def _popen(self, args: tuple[Any, ...], env: dict[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            args=args,
            env=env,
            stdout=self._stdout,
            stderr=self._stderr,
            start_new_session=True,
            # one libc call resolved before the fork and getppid: no lock another thread
            # of the agent could hold at the fork
            preexec_fn=functools.partial(die_with_parent, os.getpid()),  # noqa: PLW1509
        )


class ColdContext(SubprocessContext):
    """torch's ``SubprocessContext`` (what ``start_processes`` builds for a binary), with
    three changes:

    * `start` installs no signal handlers. torch's installs, for SIGTERM, SIGINT, SIGHUP and
      SIGQUIT, a handler that raises ``SignalException`` wherever the main thread is, and
      leaves it installed. In the middle of a start that lost workers: one already started
      but not yet in a handler (torch builds them in one expression), or forked by the
      zygote while the agent waited for the reply, was stopped by nobody and outlived the
      agent (``EADDRINUSE`` on the next job's port); raised inside ``logging``'s fork hook it
      was even swallowed, and the agent never learned of the SIGTERM. The agent's own
      handlers only set a flag: the start completes, and the loop then stops what started.
    * `_ColdHandler`: a SIGKILL of the agent, which no handler can catch, kills the workers.
    * Handlers are registered one by one: when rank k fails to start, ``close`` still finds
      the ranks before it.
    * The tee of the workers' log files to the agent's output is one `LogTee` thread, not a
      thread per file polling ten times a second (`trainguard.agent.tee`).

    `trainguard.agent.zygote_context.ZygoteContext` and the hot spares'
    `trainguard.agent.spare_pool.SpareContext` build on it.
    """

    def start(self) -> None:
        """torch's ``PContext.start`` without its signal handlers (see the class), and one
        `LogTee` thread for torch's tails."""
        self._start()
        try:
            tee = LogTee.replacing(self._tail_logs, name=f"tee-{self.name}")
        except AttributeError:  # a torch whose TailLog keeps its files elsewhere: torch's tails
            log.warning("torch's TailLog is not as trainguard knows it; a tee thread per file")
            self._tail_logs = [tail.start() for tail in self._tail_logs]
        else:
            self._tail_logs = [tee.start()]

    def _start(self) -> None:
        self.subprocess_handlers = {}
        for rank in range(self.nprocs):
            self.subprocess_handlers[rank] = self._handler(
                entrypoint=self.entrypoint,
                args=self.args[rank],
                env=self.envs[rank],
                stdout=self.stdouts[rank],
                stderr=self.stderrs[rank],
                local_rank_id=rank,
                numa_options=getattr(self, "_numa_options", None),
            )

    def _handler(self, **options: Any) -> SubprocessHandler:
        return _ColdHandler(**options)


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
