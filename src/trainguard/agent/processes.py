"""Process-tree hygiene for the agent: no orphan, no zombie, ever.

torch starts every worker as the leader of its own session (``start_new_session=True``), so one
``killpg`` reaches the worker and the children that stayed in its group. Children that left
the group (``setsid``, daemons) escape that; the agent therefore makes itself a *child
subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``): when a worker dies, its orphans are reparented to
the agent instead of init, so the agent can still find them (as its descendants), signal them
and reap them.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
from collections.abc import Collection, Iterable

import psutil

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants; False where the OS refuses."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


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
