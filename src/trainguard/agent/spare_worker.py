"""A hot-spare worker process: an interpreter with torch already imported, parked until its agent
hands it a job. This is the parked process's side; the agent's side, the pool that starts and
adopts these processes, is `trainguard.agent.spare_pool`.

Started by `trainguard.agent.spare_pool.SparePool` as ``python -m trainguard.agent.spare_worker``.
It imports the modules named in ``TRAINGUARD_SPARE_PRELOAD`` (`DEFAULT_PRELOAD`: torch, and the
``torch._dynamo`` that ``DistributedDataParallel`` imports lazily on construction; together three
to four seconds per worker on two cores that a restart no longer pays), then blocks reading one
JSON line from stdin: ``{argv, env, stdout, stderr}``. It points fds 1 and 2 at the worker's log
files, replaces its environment with the worker's, and runs the training script as ``python -u``
would (``runpy``), so the script cannot tell a spare from a fresh interpreter, except that modules
imported at start-up saw the agent's environment (the rendezvous variables are only read later, by
init_process_group) and that their objects are exempt from garbage collection (`trainguard.heap`).
End of input (the agent closed the pipe or died) makes it exit quietly.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import sys
from typing import Any

from trainguard import heap

PRELOAD_ENV = "TRAINGUARD_SPARE_PRELOAD"
# DistributedDataParallel.__init__ imports torch._dynamo (and sympy) on first use: 1.2-2.1 s here.
DEFAULT_PRELOAD = ("torch", "torch.distributed", "torch.nn.parallel", "torch._dynamo")


def main() -> int:
    """Park, then run the job received on stdin; the exit code is the script's."""
    _preload(os.environ.get(PRELOAD_ENV, ",".join(DEFAULT_PRELOAD)))
    heap.freeze()  # the script's collections skip what was preloaded (`trainguard.heap`)
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    job: dict[str, Any] = json.loads(line)
    _point(0, os.devnull, os.O_RDONLY)
    _point(1, job["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    _point(2, job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    set_title([sys.executable, *job["argv"]])  # before the environment changes
    os.environ.clear()
    os.environ.update(job["env"])
    _run(list(job["argv"]))
    return 0


def set_title(argv: list[str]) -> None:
    """Show the worker's command line in ``ps`` and psutil (needs ``setproctitle``)."""
    try:
        from setproctitle import setproctitle  # noqa: PLC0415
    except ImportError:
        return
    setproctitle(" ".join(argv))


def parse_preload(names: str) -> tuple[str, ...]:
    """Module names from a comma-separated list (blanks dropped)."""
    return tuple(filter(None, (name.strip() for name in names.split(","))))


def _preload(names: str) -> None:
    """Import each module; one this torch lacks is skipped (the script imports what it needs)."""
    for module in parse_preload(names):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            print(f"spare: preload of {module} skipped: {exc}", file=sys.stderr, flush=True)


def _point(fd: int, path: str, flags: int) -> None:
    opened = os.open(path or os.devnull, flags, 0o600)
    os.dup2(opened, fd)
    os.close(opened)


def _run(argv: list[str]) -> None:
    """Run ``[-u] (-m module | script) args...`` as ``python`` would."""
    while argv and argv[0] == "-u":
        argv.pop(0)
    if not argv:
        raise SystemExit("spare: no script to run")
    if argv[0] == "-m":
        module, *rest = argv[1:]
        sys.argv = [module, *rest]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return
    script, *rest = argv
    sys.argv = [script, *rest]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    sys.exit(main())
