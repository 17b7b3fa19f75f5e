"""The pod shim: what a container runtime does for a container, for one local pod.

``python -m trainguard.backends.local.shim --pod-dir DIR --grace S -- ARGV...`` runs ARGV (the
agent) and makes the pod behave like a container: it is a child subreaper, so processes the
agent leaves behind (workers, their children) are reparented to it; when the agent exits, or
dies from SIGKILL, every remaining descendant is killed and reaped, so a pod never leaks
processes. SIGTERM is forwarded to the agent and escalated to SIGKILL after the grace period,
as Kubernetes does on pod deletion. The agent's exit is written to ``DIR/exit.json``.

Deliberately tiny (stdlib + psutil): one runs per pod for the pod's whole life.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from trainguard.proctree import become_subreaper, reap_orphans, stop_descendants


def main(argv: list[str] | None = None) -> int:
    """Run the pod; return the agent's exit code (128+N when killed by signal N)."""
    parser = argparse.ArgumentParser(prog="trainguard-pod-shim")
    parser.add_argument("--pod-dir", required=True, type=Path)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    become_subreaper()
    agent = subprocess.Popen(command)
    deadline: list[float] = []

    def on_term(signum: int, frame: FrameType | None) -> None:
        del frame
        if not deadline:
            deadline.append(time.monotonic() + args.grace)
            _send(agent, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    code = _wait(agent, deadline)
    stop_descendants()
    exit_info = {"code": code, "time": time.time(), "terminated": bool(deadline)}
    (args.pod_dir / "exit.json").write_text(json.dumps(exit_info))
    return code


def _wait(agent: subprocess.Popen[bytes], deadline: list[float]) -> int:
    while True:
        code = agent.poll()
        if code is not None:
            return code if code >= 0 else 128 - code
        if deadline and time.monotonic() > deadline[0]:
            _send(agent, signal.SIGKILL)
        reap_orphans(keep={agent.pid})
        time.sleep(0.05)


def _send(agent: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        agent.send_signal(sig)


if __name__ == "__main__":
    sys.exit(main())
