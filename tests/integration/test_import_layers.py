"""The import-linter contracts in pyproject.toml hold, and a layer-breaking import is caught.

The `layers` contract is what keeps `trainguard` drawn as docs/architecture.md draws it. These
tests run the real `lint-imports` over a copy of the source tree: once as it is (kept), and once
with each forbidden arrow written into a real module (broken, naming the import).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_LINT = (
    "from importlinter.cli import lint_imports_command; "
    "lint_imports_command(['--no-cache', '--no-logo'])"
)


def _copy_tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src" / "trainguard", tmp_path / "src" / "trainguard")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    return subprocess.run(
        [sys.executable, "-c", RUN_LINT],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _add_import(project: Path, module: str, line: str) -> None:
    path = project / "src" / Path(*module.split(".")).with_suffix(".py")
    text = path.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    assert sep, f"{path} has no __future__ import to insert after"
    path.write_text(f"{head}{sep}{line}\n{rest}")


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "layers: entry points > controller" in result.stdout
    assert " kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "arrow"),
    [
        # the pod shim is a container runtime: it must not import the agent it launches
        (
            "trainguard.backends.local.shim",
            "import trainguard.agent.workers",
            "trainguard.backends.local.shim -> trainguard.agent.workers",
        ),
        # agent and checkpoint are independent siblings: the shared socket framing is trainguard.ipc
        (
            "trainguard.checkpoint.report",
            "import trainguard.agent.sockets",
            "trainguard.checkpoint.report -> trainguard.agent.sockets",
        ),
        # a lower layer importing a higher one
        (
            "trainguard.store.base",
            "import trainguard.controller.lease",
            "trainguard.store.base -> trainguard.controller.lease",
        ),
        (
            "trainguard.backends.local.cluster",
            "import trainguard.cli.controllers",
            "trainguard.backends.local.cluster -> trainguard.cli.controllers",
        ),
        # processes are started only by backends: the CLI asks trainguard.backends.local.daemons
        ("trainguard.cli.cluster", "import subprocess", "trainguard.cli.cluster -> subprocess"),
        (
            "trainguard.controller.pods",
            "import multiprocessing",
            "trainguard.controller.pods -> multiprocessing",
        ),
    ],
)
def test_a_layer_breaking_import_is_reported(
    tmp_path: Path, module: str, line: str, arrow: str
) -> None:
    project = _copy_tree(tmp_path)
    _add_import(project, module, line)
    result = _lint(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert arrow in result.stdout
