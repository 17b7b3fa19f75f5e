"""The MTC server's process imports no torch: one runs per node by default, and torch would
cost each of them hundreds of MB and seconds of start-up (docs/checkpointing.md has numbers)."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_and_the_mtc_server_import_no_torch() -> None:
    code = (
        "import sys, trainguard.cli.main, trainguard.checkpoint.mtc.server; "
        "found = sorted(m for m in sys.modules if m.split('.')[0] == 'torch'); "
        "print(found[:3], file=sys.stderr); sys.exit(1 if found else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
