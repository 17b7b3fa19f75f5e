"""The agent's side of the zygote: start it, ask it for workers, watch what it forked.

`Zygote` starts ``python -u -m trainguard.agent.zygote`` (the process side and the fork-safety
argument are in `trainguard.agent.zygote`) with a ``SOCK_SEQPACKET`` socket pair, so every
request and reply is one message and stdio fds travel with a request (``SCM_RIGHTS``). The
zygote imports torch while the agent does other things; the first `Zygote.fork` waits for its
ready message. Whatever goes wrong (still importing past the timeout, refused to be ready,
died, refused one request) raises `ZygoteUnavailable`, and the agent starts workers cold.

A forked worker is the agent's child (the zygote forks twice and the agent is a child
subreaper), so `ForkedProcess` waits for it with ``waitpid`` like ``Popen`` does, and exposes
the part of ``Popen``'s interface that torch's process context and `WorkerGroup` use.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from trainguard.agent.zygote import DEFAULT_PRELOAD, MAX_MESSAGE, interpreter_options

log = logging.getLogger(__name__)

ZYGOTE_MODULE = "trainguard.agent.zygote"
READY_TIMEOUT_S = 120.0
FORK_TIMEOUT_S = 30.0
POLL_S = 0.01


class ZygoteUnavailable(Exception):
    """The zygote cannot fork this worker now; start it cold."""


class Zygote:
    """One zygote process of this agent.

    Args:
        env: its environment (the agent's plus the rendezvous-free worker variables): the
            start-up variables of every request must equal these.
        preload: modules it imports before it is ready.
    """

    def __init__(self, *, env: Mapping[str, str], preload: Sequence[str] = DEFAULT_PRELOAD) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [sys.executable, "-u", "-m", ZYGOTE_MODULE, f"--fd={theirs.fileno()}"]
        argv += [f"--preload={','.join(preload)}", f"--agent={os.getpid()}"]
        with theirs:
            self._proc = subprocess.Popen(
                argv,
                pass_fds=(theirs.fileno(),),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._control = ours
        self._ready = False
        self._hung_up = False
        self.refusal: str | None = None
        """Why the zygote refused to be ready (it exits then); None otherwise."""

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def exit_code(self) -> int | None:
        return self._proc.poll()

    def alive(self) -> bool:
        """Still running, not refused and not hung up on."""
        return self._proc.poll() is None and self.refusal is None and not self._hung_up

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait for the zygote's imports.

        Raises:
            ZygoteUnavailable: it refused, died or did not finish in ``timeout`` seconds.
        """
        if self._ready:
            return
        if self.refusal is not None:
            raise ZygoteUnavailable(f"zygote refused to be ready: {self.refusal}")
        message = self._receive(timeout, "ready")
        if not message.get("ready"):
            self.refusal = str(message.get("reason"))
            raise ZygoteUnavailable(f"zygote refused to be ready: {self.refusal}")
        self._ready = True

    def fork(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, stdio: Sequence[int]
    ) -> ForkedProcess:
        """A worker running ``argv`` (``python -u script ...``) as a fresh process would.

        Args:
            argv: the full command line, the interpreter first.
            env: its whole environment.
            cwd: its working directory.
            stdio: fds for its stdin, stdout and stderr (the zygote gets copies).

        Raises:
            ZygoteUnavailable: the zygote is not ready, died, or refused this request.
        """
        self.wait_ready()
        request = {"argv": list(argv), "env": dict(env), "cwd": cwd, "signals": signal_masks()}
        try:
            socket.send_fds(self._control, [json.dumps(request).encode()], list(stdio))
        except OSError as exc:
            raise ZygoteUnavailable(f"zygote gone: {exc}") from exc
        try:
            answer = self._receive(FORK_TIMEOUT_S, "a forked worker")
        except BaseException:
            self._abandon()
            raise
        if "pid" not in answer:
            raise ZygoteUnavailable(f"zygote refused: {answer.get('error')}")
        return ForkedProcess.adopt(int(answer["pid"]), args=argv)

    def close(self) -> None:
        """Hang up and kill the zygote now, then reap it.

        It holds no state (workers it forked are in sessions of their own), and its orderly
        exit after the hang-up ran torch's interpreter finalization: 2 s (the old grace, then
        SIGKILL) of every agent's shutdown, so of every job's end.
        """
        self._hang_up()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()

    def _abandon(self) -> None:
        """No answer was read (a timeout, the zygote died): kill the zygote's whole
        group at once. A later request would read this one's reply, and a worker it may still
        fork (the middle process, the worker before its ``setsid``) would belong to no
        handler: both die with the zygote. A worker already adopted is the agent's child,
        which the failed start stops with the rest."""
        self._hang_up()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()

    def _hang_up(self) -> None:
        self._hung_up = True
        with contextlib.suppress(OSError):
            self._control.close()

    def _receive(self, timeout: float, what: str) -> dict[str, Any]:
        self._control.settimeout(timeout)
        try:
            data = self._control.recv(MAX_MESSAGE)
        except TimeoutError as exc:
            raise ZygoteUnavailable(f"no answer from the zygote within {timeout:g} s") from exc
        except OSError as exc:
            raise ZygoteUnavailable(f"zygote gone: {exc}") from exc
        if not data:
            raise ZygoteUnavailable(f"zygote exited (code {self._proc.poll()}) before {what}")
        answer: dict[str, Any] = json.loads(data)
        return answer


class ForkedProcess:
    """A worker the zygote forked and this process adopted: ``Popen``'s waiting interface.

    Args:
        pid: the worker, a child of this process.
        args: its command line (for messages).
    """

    def __init__(self, pid: int, *, args: Sequence[str]) -> None:
        self.pid = pid
        self.args = list(args)
        self.returncode: int | None = None

    @classmethod
    def adopt(cls, pid: int, *, args: Sequence[str]) -> ForkedProcess:
        """Take over ``pid``; kills it when it is not our child (we are no subreaper).

        Raises:
            ZygoteUnavailable: the worker was not adopted by this process.
        """
        parent = parent_pid(pid)
        if parent != os.getpid():
            # the group it leads, and the process itself: a process that has not called
            # setsid() yet leads no group, and killpg alone would miss it
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(pid, signal.SIGKILL)
            raise ZygoteUnavailable(
                f"forked worker {pid} has parent {parent}, not this agent: no child subreaper?"
            )
        return cls(pid, args=args)

    def poll(self) -> int | None:
        """The exit code (negative: killed by that signal) once it exited, else None."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                log.warning("worker %d was reaped by someone else: exit status lost", self.pid)
                self.returncode = 255
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(POLL_S)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def signal_masks() -> dict[str, str]:
    """This thread's ignored and blocked signals (hex, as ``/proc`` shows them): what a worker
    it exec'd would inherit, so what the zygote gives the worker it forks."""
    with open("/proc/thread-self/status") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {name: fields[name].strip() for name in ("SigIgn", "SigBlk")}


def parent_pid(pid: int) -> int | None:
    """``pid``'s parent from ``/proc`` (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def uses_zygote(entrypoint: str, args: Sequence[str]) -> bool:
    """Whether a zygote can fork these workers: ``python -u`` scripts or modules."""
    same = os.path.realpath(entrypoint) == os.path.realpath(sys.executable)
    return same and interpreter_options(args) == ("-u",)


class ZygoteKeeper:
    """The agent's one zygote: started early, replaced when it died, given up when it refused.

    Args:
        env: the zygote's environment (see `Zygote`).
        preload: modules it imports.
    """

    def __init__(self, *, env: Mapping[str, str], preload: Sequence[str] = DEFAULT_PRELOAD) -> None:
        self._env = dict(env)
        self._preload = tuple(preload)
        self._zygote: Zygote | None = None
        self.disabled: str | None = None
        """Why the agent stopped using a zygote (it refused to be ready); None while in use."""

    @property
    def env(self) -> dict[str, str]:
        """The environment its zygotes start with."""
        return dict(self._env)

    def ensure(self) -> None:
        """Start a zygote unless one is running (or zygotes refused to work here)."""
        if self.disabled is not None or (self._zygote is not None and self._zygote.alive()):
            return
        if self._zygote is not None:
            log.warning("zygote %d is gone: starting a new one", self._zygote.pid)
            self._zygote.close()
        self._zygote = Zygote(env=self._env, preload=self._preload)

    def current(self) -> Zygote | None:
        """The running zygote (it may still be importing), or None (and a log line why)."""
        zygote = self._zygote
        if zygote is None or self.disabled is not None:
            return None
        if not zygote.alive():
            self.failed(ZygoteUnavailable(f"zygote {zygote.pid} exited with {zygote.exit_code}"))
            return None
        return zygote

    def failed(self, error: ZygoteUnavailable) -> None:
        """Note that the zygote could not fork the workers, which are started cold instead."""
        log.warning("zygote unavailable (%s): starting workers cold", error)
        zygote = self._zygote
        if zygote is not None and zygote.refusal is not None:
            self.disabled = zygote.refusal
            log.warning("not using a zygote on this node any more: %s", zygote.refusal)
        if zygote is not None and not zygote.alive():
            zygote.close()
            self._zygote = None

    def pids(self) -> set[int]:
        """The zygote's pid (it is no worker: stopping workers must spare it)."""
        return {self._zygote.pid} if self._zygote is not None else set()

    def close(self) -> None:
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None
