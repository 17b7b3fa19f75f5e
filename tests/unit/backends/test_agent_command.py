"""The local backend runs the ``hyperpodrun`` a container command names as a container would:
an existing path as written, a bare name on the pod's PATH first (HyperPod's own agent there)."""

from __future__ import annotations

import sys
from pathlib import Path

from trainguard.backends.local.command import agent_argv, agent_executable


def executable(directory: Path, name: str = "hyperpodrun") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / name
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    return program


def test_a_hyperpodrun_on_the_pod_path_wins(tmp_path: Path) -> None:
    theirs = executable(tmp_path / "hyperpod" / "bin")
    path = f"{theirs.parent}:{Path(sys.executable).parent}"
    argv = agent_argv(["hyperpodrun", "--nnodes=2", "train.py"], nproc_per_node="1", path=path)
    assert argv == [str(theirs), "--nnodes=2", "train.py"]


def test_an_existing_path_runs_as_written_and_a_missing_one_falls_back_to_ours(
    tmp_path: Path,
) -> None:
    theirs = executable(tmp_path / "opt")
    assert agent_argv([str(theirs), "x.py"], nproc_per_node="1", path="")[0] == str(theirs)
    missing = ["/usr/local/bin/hyperpodrun", "x.py"]
    assert agent_argv(missing, nproc_per_node="1", path="") == [*agent_executable(), "x.py"]


def test_without_hyperpodrun_on_path_ours_runs(tmp_path: Path) -> None:
    argv = agent_argv(["hyperpodrun", "x.py"], nproc_per_node="1", path=str(tmp_path))
    assert argv == [*agent_executable(), "x.py"]


def test_wrapped_commands_always_run_our_agent(tmp_path: Path) -> None:
    theirs = executable(tmp_path)
    for command in (["torchrun", "x.py"], ["python", "x.py"], ["trainguard", "agent", "x.py"]):
        argv = agent_argv(command, nproc_per_node="2", path=str(theirs.parent))
        assert argv[: len(agent_executable())] == agent_executable()
