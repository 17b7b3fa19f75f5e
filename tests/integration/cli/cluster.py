"""A private local cluster driven through the real ``trainguard`` console script.

CLI tests run the installed entry point as a subprocess, exactly as a user types it, with their
own ``$TRAINGUARD_HOME``; `tiny_job` writes a manifest whose one worker prints a few lines and
exits, so a whole ``trainguard run`` takes seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import yaml

from trainguard import constants as c

TRAINGUARD = str(Path(sys.executable).parent / "trainguard")
WORKER = """\
import os, sys, time
attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
for step in range({lines}):
    print(f"line {{step}} attempt {{attempt}}", flush=True)
    time.sleep({pause})
sys.exit({code})
"""


class Local:
    """``$TRAINGUARD_HOME`` under a temporary directory, and the CLI run against it."""

    def __init__(self, tmp_path: Path) -> None:
        self.home, self.work = tmp_path / "home", tmp_path / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, c.ENV_HOME: str(self.home), "OMP_NUM_THREADS": "1"}

    def cli(
        self, *args: str, timeout: float = 120, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TRAINGUARD, *args],
            env=self.env, cwd=self.work, capture_output=True, text=True, timeout=timeout,
            check=False, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
        )  # fmt: skip

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """A command started as from a shell: SIGINT at its default and unblocked (a signal
        ignored or blocked in this test process would be inherited across exec: a command
        started from an xdist worker that an earlier in-process test left so ignored ^C)."""
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return subprocess.Popen(
                [TRAINGUARD, *args], env=self.env, cwd=self.work, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            signal.signal(signal.SIGINT, previous)

    def tiny_job(
        self,
        name: str = "tiny",
        *,
        lines: int = 3,
        pause: float = 0.05,
        code: int = 0,
        file: str = "job.yaml",
        **patch: Any,
    ) -> Path:
        """A one-pod job whose worker prints ``lines`` lines and exits ``code``.

        ``patch`` is merged into ``spec`` (``runPolicy`` entries merged into the default one).
        """
        script = self.work / f"{name}.py"
        script.write_text(WORKER.format(lines=lines, pause=pause, code=code))
        command = [
            "hyperpodrun",
            "--nproc-per-node=1",
            "--nnodes=1",
            f"--log_dir={self.work}/logs",
            str(script),
        ]
        run_policy = {"jobMaxRetryCount": 0, "cleanPodPolicy": "All", **patch.pop("runPolicy", {})}
        document = {
            "apiVersion": c.API_VERSION,
            "kind": c.KIND,
            "metadata": {"name": name},
            "spec": {
                "nprocPerNode": "1",
                "replicaSpecs": [
                    {
                        "name": "pods",
                        "replicas": 1,
                        "template": {"spec": {"containers": [
                            {"name": "pytorch", "image": "local", "command": command}
                        ]}},
                    }
                ],
                "runPolicy": run_policy,
                **patch,
            },
        }  # fmt: skip
        path = self.work / file
        path.write_text(yaml.safe_dump(document))
        return path

    def down(self) -> None:
        """``cluster down`` and kill whatever this home still runs."""
        if (self.home / "state.db").exists():
            self.cli("cluster", "down", "--timeout", "30", timeout=90)
        for process in psutil.process_iter(["environ"]):
            with contextlib.suppress(psutil.Error, OSError):
                if (process.info["environ"] or {}).get(c.ENV_HOME) == str(self.home):
                    process.kill()
