"""Worker script: write what this process looks like to ``<out>/rank<RANK>.json``.

Everything a worker could observe about how it was started (argv, environment, cwd, stdio,
other fds, signal dispositions and mask, session and group, rlimits, umask, threads, CUDA,
torch's generator) so a test can compare a worker forked by the zygote with a cold one.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import resource
import sys

THREADS_AT_START = len(os.listdir("/proc/self/task"))


def signal_masks() -> dict[str, str]:
    with open("/proc/self/status") as status:
        lines = [line.split(":", 1) for line in status]
    return {k: v.strip() for k, v in lines if k in {"SigBlk", "SigIgn", "SigCgt"}}


def fds() -> dict[str, str]:
    found = {}
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
    return found


def rlimits() -> dict[str, list[int]]:
    names = [n for n in dir(resource) if n.startswith("RLIMIT_")]
    return {name: list(resource.getrlimit(getattr(resource, name))) for name in names}


def main() -> int:
    out = sys.argv[sys.argv.index("--out") + 1]
    umask = os.umask(0)
    os.umask(umask)
    early_fds = fds()  # before torch opens anything
    import torch  # after the fd census

    lock_free = logging._lock.acquire(blocking=False)  # type: ignore[attr-defined]
    if lock_free:
        logging._lock.release()  # type: ignore[attr-defined]
    logging.getLogger("facts").warning("logging works in rank %s", os.environ["RANK"])
    with open("/proc/self/cmdline", "rb") as handle:
        cmdline = handle.read().replace(b"\0", b" ").decode().strip()
    facts = {
        "forked": "trainguard.agent" in sys.modules,  # the zygote runs -m trainguard.agent.zygote
        "frozen_objects": gc.get_freeze_count(),  # the zygote's preloaded modules (trainguard.heap)
        "argv": sys.argv,
        "orig_argv": sys.orig_argv,
        "executable": sys.executable,
        "path0": sys.path[0],
        "stdout_write_through": sys.stdout.write_through,
        "stdout_buffer": type(sys.stdout.buffer).__name__,
        "cmdline": cmdline,
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "fds": early_fds,
        "signals": signal_masks(),
        "session_leader": os.getsid(0) == os.getpid(),
        "group_leader": os.getpgid(0) == os.getpid(),
        "ppid": os.getppid(),
        "rlimits": rlimits(),
        "umask": umask,
        "threads_at_start": THREADS_AT_START,
        "cuda_initialized": torch.cuda.is_initialized(),
        "torch_seed": torch.initial_seed(),
        "logging_lock_free": lock_free,
        "threads_after_import": len(os.listdir("/proc/self/task")),
        "stdout_isatty": sys.stdout.isatty(),
        "stdin_fd": sys.stdin.fileno(),
    }
    with open(os.path.join(out, f"rank{os.environ['RANK']}.json"), "w") as handle:
        json.dump(facts, handle, indent=1, sort_keys=True)
    print(f"facts written by rank {os.environ['RANK']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
