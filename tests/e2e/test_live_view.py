"""``trainguard run``'s live view, read from a real pseudo-terminal through a terminal emulator.

The real CLI runs the quickstart in a pty (ptyprocess); its output is fed to pyte, which keeps
the screen a user would see. A worker is killed mid-training (``fault inject``), and the
screen must tell the story: a progress bar with step/total, ETA and loss, then the fault, the
restart, the remediation and where training resumed — with the time until the first step.
"""

from __future__ import annotations

import re
import threading
import time

import pyte
import pytest
from ptyprocess import PtyProcess

from tests.localcluster import STEPS, TRAINGUARD, Cluster

pytestmark = pytest.mark.slow

COLUMNS, ROWS = 240, 40
BAR = re.compile(r"step .*━.* (\d+)/" + str(STEPS) + r" +eta \d+:\d\d +loss \d")


class Screen:
    """A pty's output, emulated; every distinct line ever shown is kept in ``seen``."""

    def __init__(self, process: PtyProcess) -> None:
        self.process = process
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.seen: list[str] = []
        self.raw = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = self.process.read(65536)
            except EOFError:
                return
            with self._lock:
                self.raw += chunk
                self.stream.feed(chunk)
                for line in self.screen.display:
                    if line.strip() and line.rstrip() not in self.seen:
                        self.seen.append(line.rstrip())

    def lines(self) -> list[str]:
        with self._lock:
            return list(self.seen)

    def wait_for(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines() if re.search(pattern, line)]
            if found:
                return found[-1]
            if not self.process.isalive() and not self._reader.is_alive():
                break
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} never shown; screen:\n" + "\n".join(self.lines()))

    def join(self) -> None:
        self._reader.join(timeout=30)


def test_live_view_tells_the_story_of_a_killed_worker(cluster: Cluster) -> None:
    manifest = cluster.manifest()
    env = {**cluster.env, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(ROWS)}
    process = PtyProcess.spawn(
        [*TRAINGUARD, "run", str(manifest)], cwd=str(cluster.work), env=env,
        dimensions=(ROWS, COLUMNS),
    )  # fmt: skip
    screen = Screen(process)
    try:
        screen.wait_for(r"job quickstart +Running +restarts 0", 240)
        bar = screen.wait_for(BAR.pattern, 120)
        first = int(BAR.search(bar)[1])  # type: ignore[index]
        while int(BAR.search(screen.wait_for(BAR.pattern, 10))[1]) <= max(first, 25):  # type: ignore[index]
            time.sleep(0.5)  # the bar moves: steps come live from the agent
        injected = cluster.cli("fault", "inject", "quickstart", "kill-worker:rank=1")
        assert injected.returncode == 0, injected.stderr
        screen.wait_for(r"Warning WorkerCrash: ", 60)
        screen.wait_for(r"ProcessLevelRestart: Restarting workers \(restart 1", 60)
        screen.wait_for(r"job quickstart +\w+ +restarts 1", 60)
        screen.wait_for(
            r"Running: The fault of reason WorkerCrash was remediated in \d+ milliseconds", 120
        )
        resumed = screen.wait_for(r"TrainingResumed: Training resumed at step \d+", 120)
        assert re.search(
            r"resumed at step (\d+) from memory \(checkpoint of step \d+\), (\d+) ms after the "
            r"fault of reason WorkerCrash was detected \(remediated in (\d+) ms\)",
            resumed,
        ), resumed
        screen.wait_for(rf"{STEPS}/{STEPS}", 240)
        deadline = time.monotonic() + 120
        while process.isalive() and time.monotonic() < deadline:
            time.sleep(0.5)
        screen.join()
        assert not process.isalive(), "run did not finish"
        assert process.exitstatus == 0, "\n".join(screen.lines())
    finally:
        if process.isalive():
            process.kill(9)
