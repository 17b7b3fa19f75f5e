"""The container command runs under the image's ``hyperpodrun``, as locally under ours."""

from __future__ import annotations

import pytest

from trainguard.backends.kubernetes.entrypoint import container_command


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["hyperpodrun", "--nnodes=2", "t.py"], ["hyperpodrun", "--nnodes=2", "t.py"]),
        (["/opt/venv/bin/hyperpodrun", "t.py"], ["/opt/venv/bin/hyperpodrun", "t.py"]),
        (["trainguard", "agent", "t.py"], ["trainguard", "agent", "t.py"]),
        (["torchrun", "--nproc-per-node=4", "t.py"], ["hyperpodrun", "--nproc-per-node=4", "t.py"]),
        (["python", "-u", "t.py"], ["hyperpodrun", "--nproc-per-node=4", "t.py"]),
        (["python3", "-m", "pkg.train"], ["hyperpodrun", "--nproc-per-node=4", "-m", "pkg.train"]),
        (["./train.sh"], ["hyperpodrun", "--nproc-per-node=4", "--no-python", "./train.sh"]),
    ],
)
def test_command_is_run_under_the_agent(command: list[str], expected: list[str]) -> None:
    assert container_command(command, None, nproc_per_node="4") == {"command": expected}


def test_args_are_kept_apart_and_unchanged() -> None:
    result = container_command(["torchrun"], ["t.py", "-u"], nproc_per_node="1")
    assert result == {"command": ["hyperpodrun"], "args": ["t.py", "-u"]}


def test_without_command_the_images_entrypoint_is_left_alone() -> None:
    assert container_command(None, ["--steps=3"], nproc_per_node="1") == {"args": ["--steps=3"]}
    assert container_command(None, None, nproc_per_node="1") == {}
