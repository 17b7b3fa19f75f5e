"""Process-tree hygiene for the agent and the pod shim: no orphan, no zombie, ever.

torch starts every worker as the leader of its own session (``start_new_session=True``), so one
``killpg`` reaches the worker and the children that stayed in its group. Children that left
the group (``setsid``, daemons) escape that; the agent therefore makes itself a *child
subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``): when a worker dies, its orphans are reparented to
the agent instead of init, so the agent can still find them (as its descendants), signal them
and reap them. The local backend's pod shim does the same for the agent itself, as a
container runtime does; this module is a leaf below both so the backend never imports the
agent it launches (the ``layers`` import contract keeps it that way).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Collection, Iterable
from typing import Any

import psutil

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
STOP_POLL_S = 0.05


def become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants; False where the OS refuses."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def die_with_parent(parent: int) -> None:
    """Get SIGKILL when ``parent`` (our parent now) exits; exit at once if it already has.

    The parent-death signal is what makes a SIGKILL of the agent reach its workers without a
    runtime: each worker leads its own session, so a ``killpg`` of the agent's group misses
    them. Safe in ``Popen``'s ``preexec_fn`` (the libc function is resolved at import, in the
    parent: the child only calls it). The kernel clears it on fork, so a worker's own children
    are not covered; the runtime (the pod shim, the container's cgroup) kills those.
    """
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)


def _prctl() -> object | None:
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
    except OSError:
        return None


_PRCTL: Any = _prctl()


def stop_descendants(
    *, exclude: Collection[int] = (), sig: int = signal.SIGKILL, grace: float = 0.0
) -> int:
    """Stop every descendant but ``exclude`` (and their subtrees) and reap them.

    ``sig`` first; after ``grace`` seconds SIGKILL, repeated until none is left (a process
    that forks while it is being killed leaves a child behind). Exit statuses of children a
    ``Popen`` owns are taken too, so only call this for processes nobody waits for any more.

    Returns:
        How many descendants were found at first.
    """
    found = descendants(exclude)
    signal_tree((), found, sig)
    deadline = time.monotonic() + grace
    while sig != signal.SIGKILL and descendants(exclude) and time.monotonic() < deadline:
        reap_orphans(keep=exclude)
        time.sleep(STOP_POLL_S)
    for _ in range(50):
        survivors = descendants(exclude)
        if not survivors:
            break
        signal_tree((), survivors, signal.SIGKILL)
        psutil.wait_procs(survivors, timeout=0.2)
        reap_orphans(keep=exclude)
    reap_orphans(keep=exclude)
    return len(found)


def descendants(exclude: Collection[int] = ()) -> list[psutil.Process]:
    """Living descendants of this process, except ``exclude`` pids and their subtrees."""
    found: list[psutil.Process] = []
    pending = _children(psutil.Process())
    while pending:
        proc = pending.pop()
        if proc.pid in exclude:
            continue
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
            pending.extend(_children(proc))
    return found


def find_worker(root: psutil.Process, rank: int) -> int | None:
    """Pid of the worker with global rank ``rank`` below ``root``, from the environment it was
    started with (``RANK`` and ``LOCAL_RANK``, which every torchrun-style agent sets).

    For agents that do not report their workers' pids (HyperPod's). Breadth-first, so the worker
    itself is found, not a child (a data loader) that inherited its environment. A worker that
    got its rank after it started (a trainguard hot spare) is not found this way.
    """
    level = _children(root)
    while level:
        for proc in level:
            with contextlib.suppress(psutil.Error):
                env = proc.environ()
                if env.get("RANK") == str(rank) and "LOCAL_RANK" in env:
                    return int(proc.pid)
        level = [child for proc in level for child in _children(proc)]
    return None


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children()
    except psutil.Error:
        return []


def signal_tree(leaders: Iterable[int], others: Iterable[psutil.Process], sig: int) -> None:
    """Send ``sig`` to the process groups of ``leaders`` and to each of ``others``."""
    for pgid in leaders:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for proc in others:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def reap_orphans(keep: Collection[int]) -> list[int]:
    """Reap exited children that nobody waits for (adopted orphans); returns their pids.

    ``keep`` are children owned by a ``Popen`` (workers, spares): their exit status belongs to
    it, so they are never reaped here. Cheap enough for every monitor step: ``waitpid(WNOHANG)``
    on each direct child, found without scanning every process on the machine (`child_pids`).
    """
    reaped = []
    for pid in child_pids():
        if pid in keep:
            continue
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0]:
                reaped.append(pid)
    return reaped


def child_pids() -> list[int]:
    """This process's direct children.

    Linux lists them per thread in ``/proc/self/task/<tid>/children``: a few small reads, where
    ``psutil.Process().children()`` reads the stat file of every process on the machine (which
    the agent and the pod shim did 20 times a second). Elsewhere, psutil.
    """
    if not _PROC_CHILDREN:
        return [child.pid for child in _children(psutil.Process())]
    pids: list[int] = []
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{tid}/children") as handle:
            pids += [int(pid) for pid in handle.read().split()]
    return pids


_PROC_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def signal_name(exitcode: int) -> str | None:
    """``SIGKILL`` for a Popen return code of -9; None for a normal exit."""
    if exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"SIG{-exitcode}"


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PSUTIL_LETTERS = {
    psutil.STATUS_RUNNING: "R",
    psutil.STATUS_SLEEPING: "S",
    psutil.STATUS_DISK_SLEEP: "D",
    psutil.STATUS_STOPPED: "T",
    psutil.STATUS_TRACING_STOP: "t",
    psutil.STATUS_ZOMBIE: "Z",
    psutil.STATUS_DEAD: "X",
    psutil.STATUS_IDLE: "I",
}


def process_state(pid: int) -> tuple[str, float] | None:
    """``(state letter, CPU seconds)`` of ``pid`` from ``/proc/<pid>/stat``; None when gone.

    One small read, cheap enough for every monitor step. The letter is the kernel's (``R``
    running, ``S`` sleeping, ``D`` uninterruptible, ``T`` stopped, ``Z`` zombie); elsewhere
    psutil's status is mapped back to it.
    """
    if not _PROC_CHILDREN:
        return _psutil_state(pid)
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    if len(fields) < 13:
        return None
    return fields[0].decode(), (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _psutil_state(pid: int) -> tuple[str, float] | None:
    try:
        proc = psutil.Process(pid)
        status, times = proc.status(), proc.cpu_times()
    except psutil.Error:
        return None
    return _PSUTIL_LETTERS.get(status, "?"), times.user + times.system
