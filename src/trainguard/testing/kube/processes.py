"""The fake kubelet's container runtime: one container = one local process in its own session.

This is the only module of ``trainguard.testing`` that starts processes (the import contract
names it): the kubelet is a node runtime, like the local backend's pod shim. Each container's
process leads a new session, so SIGTERM reaches its whole process group, as a runtime signals
a container's main process. A container is more than its group, though: a process that called
``setsid`` (torch starts every worker so) or was orphaned when its parent died has left both the
group and the tree. A runtime finds those through the container's cgroup, and the kernel kills
them when the container's main process exits (its PID namespace is torn down). Without cgroups,
the fake marks every container's environment with ``TRAINGUARD_FAKE_CONTAINER`` = a random id,
which every descendant inherits (torch elastic, our zygote and shells pass the environment on),
and kills every process carrying its id when the main process exits or the container is killed,
so nothing of a deleted pod keeps the pod's address and ports after its IP is handed out again.
There is no image: ``command[0]`` is looked up on the
container's own ``PATH``, as a runtime looks it up in the image, and an image's entrypoint is
never guessed (a container without ``command`` cannot start). stdout and stderr go to one log
file per container, which the kubelet serves as ``pods/log``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import psutil

from trainguard.proctree import signal_tree
from trainguard.testing.kube.podenv import ContainerConfig

CONTAINER_MARK = "TRAINGUARD_FAKE_CONTAINER"
"""The environment variable that marks every process of one container (see the module doc)."""
KILL_ROUNDS = 5
IMAGE_ENV_KEYS = ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


def host_image_env() -> dict[str, str]:
    """The host variables that stand in for an image's environment (there is no image).

    The "image" is this Python environment: its ``bin`` directory leads ``PATH``, so ``python``,
    ``trainguard`` and ``hyperpodrun`` in a container's command are the ones installed here.
    """
    env = {key: os.environ[key] for key in IMAGE_ENV_KEYS if key in os.environ}
    env["PATH"] = os.pathsep.join(
        p for p in (os.path.dirname(sys.executable), env.get("PATH", os.defpath)) if p
    )
    return env


class StartError(Exception):
    """The runtime could not start the container's process; the message is the runtime's."""


class ContainerProcess:
    """One running container: its process (group) and its log file."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path, mark: str) -> None:
        self._process = process
        self.log_path = log_path
        self.mark = mark

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    def start(cls, config: ContainerConfig, log_path: Path) -> ContainerProcess:
        """Start ``config`` with its output appended to ``log_path``.

        Raises:
            StartError: no command, not found on PATH, or no such working directory.
        """
        argv = _resolve(config.argv, config.env.get("PATH", ""))
        cwd = config.working_dir
        if cwd is not None and not Path(cwd).is_dir():
            raise StartError(f'chdir to cwd ("{cwd}") set in config.json failed: no such directory')
        log_path.parent.mkdir(parents=True, exist_ok=True)
        mark = uuid.uuid4().hex
        with open(log_path, "ab") as log:
            try:
                process = subprocess.Popen(
                    argv,
                    env={**config.env, CONTAINER_MARK: mark},
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise StartError(f'exec: "{argv[0]}": {exc.strerror}') from exc
        return cls(process, log_path, mark)

    def exit_code(self) -> int | None:
        """None while running; the exit status, or 128+N after signal N (as runtimes report)."""
        code = self._process.poll()
        if code is None:
            return None
        return 128 - code if code < 0 else code

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the container's process group (a no-op once it is gone)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, sig)

    def kill(self) -> None:
        """SIGKILL the group, every descendant and every other process of the container, then
        reap the leader."""
        try:
            escaped = psutil.Process(self._process.pid).children(recursive=True)
        except psutil.Error:
            escaped = []
        signal_tree([self._process.pid], [*escaped, *container_members(self.mark)], signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        self.kill_leftovers()

    def kill_leftovers(self) -> None:
        """After the main process exited: SIGKILL what is left of the container, as the kernel
        does when a PID namespace's init exits. Repeated while any is left (one may fork while
        it is being killed)."""
        for _ in range(KILL_ROUNDS):
            left = container_members(self.mark)
            if not left:
                return
            signal_tree([], left, signal.SIGKILL)
            psutil.wait_procs(left, timeout=2)


def container_members(mark: str) -> list[psutil.Process]:
    """Every living process whose environment carries the container mark ``mark``."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(CONTAINER_MARK) == mark and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def _resolve(argv: Sequence[str], path: str) -> list[str]:
    if not argv:
        raise StartError("no command specified (the fake kubelet runs no image entrypoint)")
    if "/" in argv[0]:
        return list(argv)
    found = shutil.which(argv[0], path=path)
    if found is None:
        raise StartError(f'exec: "{argv[0]}": executable file not found in $PATH')
    return [found, *argv[1:]]
