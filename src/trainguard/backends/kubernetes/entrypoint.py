"""The container command of a pod on Kubernetes: the manifest's, run under our agent.

HyperPod requires the container command to be ``hyperpodrun ...`` and refuses jobs that start
``torchrun`` or ``python train.py`` (a known pain, reference §h.3). The local backend accepts
all three (`trainguard.backends.local.command`); so does this one, with the same rules, so a
manifest behaves alike on both backends. The difference: here the agent is the image's
``hyperpodrun`` found on the container's ``PATH`` (no path of this machine leaks into a pod).

Kubernetes keeps ``command`` (the entrypoint) and ``args`` apart; only ``command`` is
rewritten. A container without ``command`` runs the image's entrypoint, which we cannot
see, so it is left as it is.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

AGENT = "hyperpodrun"
AGENT_COMMANDS = ("hyperpodrun", "trainguard-agent")
PYTHON_NAMES = ("python", "python3", f"python3.{sys.version_info.minor}")


def container_command(
    command: Sequence[str] | None, args: Sequence[str] | None, *, nproc_per_node: str
) -> dict[str, Any]:
    """``{"command": [...]}`` (and ``args`` unchanged) that runs the workload under the agent."""
    if not command:
        return {} if args is None else {"args": list(args)}
    result: dict[str, Any] = {"command": agent_command(command, nproc_per_node=nproc_per_node)}
    if args is not None:
        result["args"] = list(args)
    return result


def agent_command(command: Sequence[str], *, nproc_per_node: str) -> list[str]:
    """``command`` with its program replaced by, or wrapped in, ``hyperpodrun``."""
    program, rest = PurePosixPath(command[0]).name, list(command[1:])
    if program in AGENT_COMMANDS:
        return [command[0], *rest]
    if program == "trainguard" and rest[:1] == ["agent"]:
        return list(command)
    if program == "torchrun":
        return [AGENT, *rest]
    nproc = f"--nproc-per-node={nproc_per_node}"
    if program in PYTHON_NAMES or program.startswith("python3"):
        if rest[:1] == ["-m"] and len(rest) > 1:
            return [AGENT, nproc, "-m", *rest[1:]]
        return [AGENT, nproc, *[a for a in rest if a != "-u"]]
    return [AGENT, nproc, "--no-python", *command]
