"""Whether a process is really alive: a zombie (exited, not yet reaped) is not.

A controller killed with SIGKILL whose parent is gone can stay a zombie for as long as nobody
reaps it; ``psutil.pid_exists`` still says yes, and a new controller would wait forever for a
dead one's lease. Everything that judges a lease holder or a pod by its pid asks here.
"""

from __future__ import annotations

import psutil


def process_alive(pid: int) -> bool:
    """True while ``pid`` exists and has not exited (zombies count as dead)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
