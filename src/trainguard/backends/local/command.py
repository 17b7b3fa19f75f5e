"""Turn a container's command into the argv of a local pod.

HyperPod requires the container command to be ``hyperpodrun ...`` (a known pain: existing
``torchrun`` or ``python train.py`` jobs stopped working, reference §h.3). Locally we accept all
three: ``hyperpodrun``/``trainguard agent`` run as they are, ``torchrun`` becomes the agent with
the same arguments (the agent takes torchrun's), and anything else is wrapped in the agent with
``nprocPerNode`` workers (``--no-python`` for non-Python programs).

``hyperpodrun`` is found the way a container finds it: an existing path as written, a bare name
on the pod's ``PATH`` first, so a user can put another ``hyperpodrun`` (HyperPod's own agent)
there. Otherwise, and for everything wrapped, the agent comes from the running interpreter's
environment, so an un-activated venv works.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from trainguard.errors import BackendError

AGENT_COMMANDS = ("hyperpodrun", "trainguard-agent")
PYTHON_NAMES = ("python", "python3", f"python3.{sys.version_info.minor}")


def agent_argv(
    command: Sequence[str], *, nproc_per_node: str, path: str | None = None
) -> list[str]:
    """The argv that runs ``command`` (container command + args) under an agent.

    Args:
        command: the container's command followed by its args.
        nproc_per_node: the job's ``nprocPerNode`` (for commands wrapped in the agent).
        path: the pod's ``PATH`` (the controller's when None), searched for ``hyperpodrun``.
    """
    if not command:
        raise BackendError("the container has neither command nor args to run")
    program, rest = Path(command[0]).name, list(command[1:])
    if program in (*AGENT_COMMANDS, "torchrun"):
        chosen = named_agent(command[0], path=path) if program == "hyperpodrun" else None
        return [*(chosen or agent_executable()), *rest]
    if program == "trainguard" and rest[:1] == ["agent"]:
        return [*agent_executable(), *rest[1:]]
    nproc = _nproc_flag(nproc_per_node)
    if program in PYTHON_NAMES or program.startswith("python3"):
        if rest[:1] == ["-m"] and len(rest) > 1:
            return [*agent_executable(), nproc, "-m", *rest[1:]]
        return [*agent_executable(), nproc, *[a for a in rest if a != "-u"]]
    return [*agent_executable(), nproc, "--no-python", *command]


def named_agent(name: str, *, path: str | None) -> list[str]:
    """``name`` as a container runs it (a path as written, a bare name on ``path``), else ours."""
    if os.sep in name:
        return [name] if os.access(name, os.X_OK) and Path(name).is_file() else agent_executable()
    found = shutil.which(name, path=path if path is not None else os.environ.get("PATH"))
    return [found] if found else agent_executable()


def agent_executable() -> list[str]:
    """``hyperpodrun`` of this interpreter's environment (falls back to PATH)."""
    beside = Path(sys.executable).parent / "hyperpodrun"
    if beside.exists():
        return [str(beside)]
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory) / "hyperpodrun"
        if candidate.exists():
            return [str(candidate)]
    return [sys.executable, "-m", "trainguard.agent"]


def _nproc_flag(nproc_per_node: str) -> str:
    return f"--nproc-per-node={nproc_per_node}"
