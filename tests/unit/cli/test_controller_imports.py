"""The controller's process never needs torch: `trainguard run`, `cluster up` and `controller`
run the controller from the CLI, and importing torch there cost ~1.3 s of every job's boot and
~200 MiB of the controller's memory (issue 18). Checked in a fresh interpreter, where
``sys.modules`` tells what an import really pulled in."""

from __future__ import annotations

import subprocess
import sys

from trainguard.checkpoint.mtc.server import DEFAULT_PORT
from trainguard.constants import MTC_SERVER_PORT

CONTROLLER_PATH = (
    "trainguard.cli.main",
    "trainguard.controller.loop",
    "trainguard.backends.local.backend",
    "trainguard.backends.local.cluster",
)


def test_the_controller_path_does_not_import_torch() -> None:
    probe = (
        "import importlib, sys\n"
        f"for name in {CONTROLLER_PATH!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_the_checkpoint_command_defaults_to_the_mtc_server_port() -> None:
    assert MTC_SERVER_PORT == DEFAULT_PORT
