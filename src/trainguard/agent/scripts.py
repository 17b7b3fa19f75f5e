"""Pre- and post-train scripts (``--pre-train-script``/``--post-train-script``).

HyperPod runs the pre-train script before every (re)start and the post-train script after the
workers all succeed, each with an opaque argument string. Ours do the same; a ``.py`` script
runs with this interpreter, anything else is executed directly. The script's stdout goes to the
agent's stdout; its stderr is echoed there too and its tail kept, so a failing script's reason
appears in ``/status`` next to its exit code.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Mapping

from trainguard.errors import ScriptFailed

STDERR_TAIL = 2000


def run_script(script: tuple[str, str], *, env: Mapping[str, str]) -> None:
    """Run ``script`` = (path, argument string) to completion.

    Raises:
        ScriptFailed: it exited non-zero or could not be started.
    """
    path, arguments = script
    argv = [*_interpreter(path), path, *shlex.split(arguments)]
    try:
        done = subprocess.run(
            argv, env=dict(env), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
    except OSError as exc:
        raise ScriptFailed(path, 127, str(exc)) from exc
    stderr = done.stderr.decode(errors="replace")
    if stderr:
        sys.stdout.write(stderr)
        sys.stdout.flush()
    if done.returncode != 0:
        raise ScriptFailed(path, done.returncode, stderr[-STDERR_TAIL:])


def _interpreter(path: str) -> list[str]:
    return [sys.executable] if path.endswith(".py") else []
