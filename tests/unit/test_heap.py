"""`trainguard.heap`: our processes leave the interpreter's last collection nothing to visit."""

from __future__ import annotations

import subprocess
import sys

EXIT_PROBE = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count()))
from trainguard.cli.main import main
sys.argv = ["trainguard", "version"]
main()
"""


def test_a_trainguard_command_exits_with_its_objects_frozen() -> None:
    done = subprocess.run(
        [sys.executable, "-c", EXIT_PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    frozen = int(done.stdout.rsplit("frozen at exit:", 1)[1])
    assert frozen > 10_000  # the command's modules (typer, pydantic, rich, ours)
