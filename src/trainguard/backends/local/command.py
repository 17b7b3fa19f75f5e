"""Turn a container's command into the argv of a local pod.

HyperPod requires the container command to be ``hyperpodrun ...`` (a known pain: existing
``torchrun`` or ``python train.py`` jobs stopped working, reference §h.3). Locally we accept all
three: ``hyperpodrun``/``trainguard agent`` run as they are, ``torchrun`` becomes the agent with
the same arguments (the agent takes torchrun's), and anything else is wrapped in the agent with
``nprocPerNode`` workers (``--no-python`` for non-Python programs). The agent executable comes
from the running interpreter's environment, so an un-activated venv works.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from trainguard.errors import BackendError

AGENT_COMMANDS = ("hyperpodrun", "trainguard-agent")
PYTHON_NAMES = ("python", "python3", f"python3.{sys.version_info.minor}")


def agent_argv(command: Sequence[str], *, nproc_per_node: str) -> list[str]:
    """The argv that runs ``command`` (container command + args) under a trainguard agent."""
    if not command:
        raise BackendError("the container has neither command nor args to run")
    program, rest = Path(command[0]).name, list(command[1:])
    if program in AGENT_COMMANDS:
        return [*agent_executable(), *rest]
    if program == "trainguard" and rest[:1] == ["agent"]:
        return [*agent_executable(), *rest[1:]]
    if program == "torchrun":
        return [*agent_executable(), *rest]
    nproc = _nproc_flag(nproc_per_node)
    if program in PYTHON_NAMES or program.startswith("python3"):
        if rest[:1] == ["-m"] and len(rest) > 1:
            return [*agent_executable(), nproc, "-m", *rest[1:]]
        return [*agent_executable(), nproc, *[a for a in rest if a != "-u"]]
    return [*agent_executable(), nproc, "--no-python", *command]


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
