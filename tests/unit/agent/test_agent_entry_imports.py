"""The agent's entry module imports no torch, so the zygote it starts first imports torch while
the agent imports its own heavy parts, not after them (issue 18: the largest serial wait of a
job's boot). Checked in a fresh interpreter, where ``sys.modules`` tells what was imported."""

from __future__ import annotations

import subprocess
import sys


def test_the_agent_entry_module_does_not_import_torch() -> None:
    probe = (
        "import sys\n"
        "import trainguard.agent.main\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
