"""The zygote's checks: what it refuses to fork, and when forking is unsafe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest

from trainguard.agent.zygote import Refused, check, fork_hazards, interpreter_options
from trainguard.agent.zygote_client import signal_masks, uses_zygote

START_ENV = {"PATH": "/bin", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
MASKS = {"SigIgn": "0000000000001000", "SigBlk": "0000000000000000"}


def _request(**changes: Any) -> dict[str, Any]:
    request = {
        "argv": [sys.executable, "-u", "train.py", "--lr", "0.1"],
        "env": START_ENV | {"RANK": "3", "MASTER_PORT": "29500"},
        "cwd": "/tmp",
        "signals": MASKS,
    }
    return request | changes


def test_a_python_u_script_with_rank_variables_becomes_a_job() -> None:
    job = check(_request(), [5, 6, 7], START_ENV)
    assert job.argv[2:] == ("train.py", "--lr", "0.1")
    assert job.env["RANK"] == "3" and job.stdio == (5, 6, 7)
    assert (job.ignored_signals, job.blocked_signals) == (0x1000, 0)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"argv": ["/usr/bin/env", "-u", "train.py"]}, "is not this interpreter"),
        ({"argv": [sys.executable, "train.py"]}, "interpreter options []"),
        ({"argv": [sys.executable, "-u", "-O", "train.py"]}, "['-u', '-O']"),
        ({"env": START_ENV | {"OMP_NUM_THREADS": "8"}}, "OMP_NUM_THREADS"),
        ({"env": START_ENV | {"PYTHONHASHSEED": "0"}}, "PYTHONHASHSEED"),
        ({"env": START_ENV | {"TORCH_LOGS": "+dynamo"}}, "TORCH_LOGS"),
        ({"env": {"PATH": "/bin", "OMP_NUM_THREADS": "1"}}, "PYTHONUNBUFFERED"),
    ],
)
def test_what_a_fork_cannot_make_equal_is_refused(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(Refused, match=why.replace("[", r"\[").replace("]", r"\]")):
        check(_request(**changes), [5, 6, 7], START_ENV)


def test_variables_read_after_import_may_differ() -> None:
    env = START_ENV | {"MASTER_ADDR": "10.0.0.1", "NCCL_DEBUG": "INFO", "TORCH_NCCL_X": "1"}
    assert check(_request(env=env), [5, 6, 7], START_ENV).env["NCCL_DEBUG"] == "INFO"


def test_options_end_at_the_script_or_module() -> None:
    assert interpreter_options(["-u", "-m", "pkg.train", "-x"]) == ("-u",)
    assert interpreter_options(["-u", "-X", "dev", "s.py"]) == ("-u", "-X")
    assert uses_zygote(sys.executable, ["-u", "train.py"])
    assert not uses_zygote("/bin/bash", ["-u", "train.sh"])
    assert not uses_zygote(sys.executable, ["train.py"])


def test_a_second_thread_makes_forking_unsafe() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        tasks = len(os.listdir("/proc/self/task"))  # pytest's own threads and this one
        assert (fork_hazards() or "").startswith(f"{tasks} threads after the imports")
    finally:
        release.set()
        thread.join()


def test_signal_masks_are_read_from_this_thread() -> None:
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    try:
        blocked = int(signal_masks()["SigBlk"], 16)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    assert blocked >> (signal.SIGUSR2 - 1) & 1


# The middle process exits before the worker's first line runs (the worker is held back in
# its fork); the worker must then see it is adopted already instead of waiting for a parent
# that is gone (it took the subreaper's pid for the middle's and spun 5 s: restarts of 5.4 s
# instead of 0.35 s, one in four).
LATE_WORKER = """
import os, sys, time
from trainguard.agent import zygote
from trainguard.proctree import become_subreaper
assert become_subreaper()
real_fork, real_sleep, forks = os.fork, time.sleep, []
def fork():
    forks.append(1)
    pid = real_fork()
    if pid == 0 and len(forks) == 2:
        real_sleep(0.3)
    return pid
def spin(seconds):
    os._exit(3)
os.fork = fork
zygote.time.sleep = spin
result = zygote.fork_twice("job")
if result == "job":
    os._exit(0)
_, status = os.waitpid(result, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_worker_forked_after_its_middle_process_exited_does_not_wait() -> None:
    done = subprocess.run([sys.executable, "-c", LATE_WORKER], timeout=60, check=False)
    assert done.returncode == 0, "the worker waited for a middle process that had exited"
