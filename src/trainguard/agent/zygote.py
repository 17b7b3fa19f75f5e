"""The zygote: one single-threaded process per agent with torch imported, forking workers.

A cold start pays a new interpreter, ``import torch`` and ``torch._dynamo`` in every worker
(~3.5 s on two busy cores). The agent instead starts this process once (``python -u -m
trainguard.agent.zygote --fd N``); it imports the preload modules (torch, ``torch.distributed``,
``torch.nn.parallel``, ``torch._dynamo``, ``trainguard.checkpoint.manager``), says ready over the
``SOCK_SEQPACKET`` socket the agent gave it, and then forks one worker per request. The agent's
side is `trainguard.agent.zygote_client`; torch's process context adopts the forked workers
through `trainguard.agent.zygote_context`.

Why forking here is safe (each point is checked or tested, not assumed):

* **No threads at fork.** Locks (the allocator's, logging's, the import lock, OpenMP's) can
  only be left held in a child by a thread other than the forking one. `fork_hazards` counts
  the kernel's tasks (``/proc/self/task``) after the imports and before every fork: one, or the
  zygote refuses (ready = false) and the agent starts workers cold. With ``OMP_NUM_THREADS``
  unset NumPy's OpenBLAS starts its pool at import, which is caught here; the agent sets
  ``OMP_NUM_THREADS=1`` for several workers per node, as torchrun does, and then none starts.
  torch creates its intra-op pool lazily on the first parallel op, which the zygote never runs.
* **No CUDA context.** The zygote never touches a device; `fork_hazards` refuses if
  ``torch.cuda.is_initialized()``. Workers initialise CUDA themselves, after the fork.
* **No compiled state.** The zygote runs no model code, so ``torch._dynamo``'s caches and
  counters are as empty as after a fresh import.
* **The process a worker sees is a fresh one's.** The double fork makes the worker an orphan
  that the agent (a child subreaper) adopts: the agent waits for it and reads its exit status
  as for a ``Popen`` child. The worker calls ``setsid`` (torch starts workers with
  ``start_new_session``), gets the agent's stdin and its two log files as fds 0-2 (passed with
  ``SCM_RIGHTS``, opened by torch's own handler), the full environment torch would pass, the
  agent's cwd, ``sys.argv``/``sys.orig_argv``/``sys.path[0]`` as ``python -u script`` sets them,
  and its command line as its process title. Signal dispositions and mask, rlimits and umask
  are inherited from a process started like a worker (a ``Popen`` child of the agent running
  ``python -u``), so they equal a fresh worker's. ``random`` and NumPy's global generator are
  reseeded from the OS as a fresh import would seed them; torch's default generator has its
  fixed default seed in both. The integration test compares a forked worker with a cold one.
* **What cannot be made equal is refused.** Interpreter options other than ``-u`` and any
  variable read while the preload modules import (`STARTUP_VARIABLES`: ``PYTHON*``, thread
  pools, CUDA, torch logging/compile settings, locale) that differs between the request and
  the zygote's own start make the zygote answer with an error; the agent then starts that
  worker cold. Known differences that remain: the string hash seed is the zygote's (shared by
  the workers it forks), modules the zygote imported are already in ``sys.modules``,
  ``/proc/<pid>/environ`` shows the zygote's start environment (``os.environ`` is right), and
  the objects of those modules are exempt from garbage collection (`trainguard.heap`: a forked
  worker's collections, the last one at its exit included, would otherwise visit and copy
  every page of them).

The zygote serves one request at a time and answers every request; a closed socket (the agent
exited) ends it, and so does the agent's death while it is still importing (``PDEATHSIG``). The
workers it forks do not inherit that, so each sets its own once the agent adopted it, as the
agent's cold workers get it: a SIGKILL of the agent kills its workers too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trainguard import heap
from trainguard.agent.spare_worker import parse_preload, set_title
from trainguard.proctree import die_with_parent

DEFAULT_PRELOAD = (
    "torch",
    "torch.distributed",
    "torch.nn.parallel",
    "torch._dynamo",
    "trainguard.checkpoint.manager",  # not the package: it imports its names on first use
)
MAX_MESSAGE = 4 * 2**20
STARTUP_VARIABLES = (
    "PYTHON",
    "OMP_",
    "KMP_",
    "GOMP_",
    "MKL_",
    "OPENBLAS_",
    "LD_",
    "MALLOC_",
    "CUDA_",
    "PYTORCH_",
    "TORCH_LOGS",
    "TORCHDYNAMO_",
    "TORCHINDUCTOR_",
    "TORCH_COMPILE",
    "LANG",
    "LC_",
)
"""Prefixes of variables read while the preload modules import (or by the interpreter at start):
a request whose value differs from the zygote's start environment is refused."""


class Refused(Exception):
    """A request this zygote cannot fork as an exact fresh process (the agent starts it cold)."""


@dataclass(frozen=True)
class Job:
    """What a forked worker becomes: its command line, environment, cwd, stdio fds, and the
    signal masks (``/proc`` hex) of the agent thread that would otherwise have exec'd it."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    stdio: tuple[int, int, int]
    ignored_signals: int
    blocked_signals: int


def main(argv: Sequence[str] | None = None) -> int:
    """Import, say ready, fork workers; in a forked worker, run its script (the exit code)."""
    parser = argparse.ArgumentParser(prog="python -m trainguard.agent.zygote")
    parser.add_argument("--fd", type=int, required=True, help="the agent's control socket")
    parser.add_argument("--preload", default=",".join(DEFAULT_PRELOAD))
    parser.add_argument("--agent", type=int, default=None, help="die with this parent pid")
    args = parser.parse_args(argv)
    if args.agent is not None:
        die_with_parent(args.agent)
    startup_env = dict(os.environ)
    with socket.socket(fileno=args.fd) as control:
        preload(parse_preload(args.preload))
        heap.freeze()  # forked workers never traverse (nor copy) the preloaded objects
        hazard = fork_hazards()
        reply(control, {"ready": hazard is None, "pid": os.getpid(), "reason": hazard})
        if hazard is not None:
            return 0
        job = serve(control, startup_env)
    if job is None:
        return 0
    if args.agent is not None:  # adopted by now: the worker dies with the agent, as a cold one
        die_with_parent(args.agent)
    return become(job)


def preload(names: Sequence[str]) -> None:
    """Import each module (one this installation lacks is skipped: the script imports it)."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            print(f"zygote: preload of {name} skipped: {exc}", file=sys.stderr, flush=True)


def fork_hazards() -> str | None:
    """Why forking this process now would not be safe, or None."""
    tasks = len(os.listdir("/proc/self/task"))
    if tasks != 1:
        return f"{tasks} threads after the imports (a thread pool started at import?)"
    cuda = sys.modules.get("torch.cuda")
    if cuda is not None and cuda.is_initialized():
        return "CUDA is initialised"
    return None


def serve(control: socket.socket, startup_env: Mapping[str, str]) -> Job | None:
    """Answer fork requests until the agent hangs up (None); in a forked worker, its `Job`."""
    while True:
        data, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 3)
        if not data:
            return None
        outcome = handle(data, fds, startup_env)
        if isinstance(outcome, Job):
            return outcome
        try:
            reply(control, outcome)
        except (BrokenPipeError, ConnectionResetError):
            return None  # the agent hung up before our answer (it is shutting down)


def handle(data: bytes, fds: Sequence[int], startup_env: Mapping[str, str]) -> Job | dict[str, Any]:
    """Fork the requested worker: the reply for the agent, or in the worker its `Job`."""
    try:
        job = check(json.loads(data), fds, startup_env)
        hazard = fork_hazards()
        if hazard is not None:
            raise Refused(hazard)
        forked = fork_twice(job)
    except (Refused, OSError, ValueError, KeyError, TypeError) as exc:
        _close(fds)
        return {"error": f"{type(exc).__name__}: {exc}"}
    if isinstance(forked, Job):
        return forked  # the worker keeps the stdio fds; `become` moves them to 0-2
    _close(fds)
    return {"pid": forked}


def check(request: Mapping[str, Any], fds: Sequence[int], startup_env: Mapping[str, str]) -> Job:
    """The request as a `Job`; `Refused` when a fresh process would differ from a fork."""
    argv, env = tuple(str(a) for a in request["argv"]), dict(request["env"])
    if len(fds) != 3:
        raise Refused(f"expected 3 stdio fds, got {len(fds)}")
    if not argv or os.path.realpath(argv[0]) != os.path.realpath(sys.executable):
        raise Refused(f"entrypoint {argv[:1]} is not this interpreter {sys.executable}")
    options = interpreter_options(argv[1:])
    if options != ("-u",):
        raise Refused(f"interpreter options {list(options)} differ from the zygote's ['-u']")
    changed = sorted(
        name
        for name in set(env) | set(startup_env)
        if name.startswith(STARTUP_VARIABLES) and env.get(name) != startup_env.get(name)
    )
    if changed:
        raise Refused(f"start-up variables differ from the zygote's: {', '.join(changed)}")
    signals = request["signals"]
    stdio = (fds[0], fds[1], fds[2])
    return Job(
        argv,
        env,
        str(request["cwd"]),
        stdio,
        int(signals["SigIgn"], 16),
        int(signals["SigBlk"], 16),
    )


def interpreter_options(args: Sequence[str]) -> tuple[str, ...]:
    """The options before the script (or before ``-m``)."""
    options = []
    for arg in args:
        if arg == "-m" or not arg.startswith("-"):
            break
        options.append(arg)
    return tuple(options)


def fork_twice(job: Job) -> int | Job:
    """Fork a worker that the agent (child subreaper) adopts; the worker's pid, or in the
    worker itself its `Job`."""
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:  # the short-lived middle process: fork the worker, tell its pid, exit
        os.close(read_end)
        me = os.getpid()  # before the fork: the middle may exit before the worker's first line
        try:
            worker = os.fork()
        except OSError:
            os._exit(1)
        if worker == 0:
            os.close(write_end)
            _await_adoption(me)
            return job
        os.write(write_end, str(worker).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        told = pipe.read()
    os.waitpid(middle, 0)
    if not told:
        raise OSError("the middle process could not fork the worker")
    return int(told)


def _await_adoption(middle: int, timeout: float = 5.0) -> None:
    """Wait until the middle process has exited and the agent (the subreaper) adopted us, so
    the worker's parent is the agent from its first line on, as after a cold start."""
    deadline = time.monotonic() + timeout
    while os.getppid() == middle and time.monotonic() < deadline:
        time.sleep(0.001)


def become(job: Job) -> int:
    """Turn this forked process into the worker a fresh ``python -u`` would be; run it."""
    os.setsid()
    for target, fd in enumerate(job.stdio):
        os.dup2(fd, target)
    _close([fd for fd in job.stdio if fd > 2])
    os.chdir(job.cwd)
    set_title(list(job.argv))  # before the environment changes: setproctitle reads it once
    os.environ.clear()
    os.environ.update(job.env)
    exec_signals(ignored=job.ignored_signals, blocked=job.blocked_signals)
    _reseed()
    script_args = list(job.argv[1 + len(interpreter_options(job.argv[1:])) :])
    sys.orig_argv = list(job.argv)
    run(script_args)
    return 0


def exec_signals(*, ignored: int, blocked: int) -> None:
    """Signal dispositions and mask as ``Popen`` + ``exec`` + Python's start-up would leave them.

    ``exec`` keeps ignored signals ignored and resets caught ones to the default; ``Popen``
    first resets SIGPIPE and SIGXFSZ, which Python's start-up then ignores; Python installs
    its SIGINT handler unless SIGINT is ignored. The blocked mask survives ``exec``.
    """
    for sig in signal.valid_signals():
        if sig in {signal.SIGKILL, signal.SIGSTOP}:
            continue
        handler: Any = signal.SIG_IGN if ignored >> (sig - 1) & 1 else signal.SIG_DFL
        if sig in {signal.SIGPIPE, signal.SIGXFSZ}:
            handler = signal.SIG_IGN
        elif sig == signal.SIGINT and handler == signal.SIG_DFL:
            handler = signal.default_int_handler
        with contextlib.suppress(OSError, ValueError):  # signals libc reserves for itself
            signal.signal(sig, handler)
    mask = {sig for sig in signal.valid_signals() if blocked >> (sig - 1) & 1}
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def run(args: list[str]) -> None:
    """Run ``(-m module | script) args...`` as ``python`` would (exceptions propagate)."""
    import runpy  # noqa: PLC0415 (workers only)

    if args and args[0] == "-m":
        module, *rest = args[1:]
        sys.argv = [module, *rest]
        sys.path[0] = os.getcwd()
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return
    if not args:
        raise SystemExit("zygote: no script to run")
    script, *rest = args
    sys.argv = [script, *rest]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")


def reply(control: socket.socket, message: Mapping[str, Any]) -> None:
    control.send(json.dumps(message).encode())


def _reseed() -> None:
    """Seed what a fresh start seeds from the OS: ``random`` (CPython's fork hook does it too),
    NumPy's global generator and torch's CPU generator (each process gets its own seed;
    CUDA generators are created after the fork, with their usual default)."""
    random.seed()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.default_generator.seed()


def _close(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
