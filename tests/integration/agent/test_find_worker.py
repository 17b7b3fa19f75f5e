"""`proctree.find_worker`: a worker found by the ``RANK`` it was started with, not the child
that inherited it (how fault injection reaches a HyperPod agent's workers)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from trainguard.proctree import find_worker

WORKER = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def worker() -> Iterator[subprocess.Popen[bytes]]:
    env = os.environ | {"RANK": "3", "LOCAL_RANK": "1"}
    process = subprocess.Popen([sys.executable, "-c", WORKER], env=env)
    deadline = time.monotonic() + 20
    while not psutil.Process(process.pid).children() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield process
    for child in psutil.Process(process.pid).children(recursive=True):
        child.kill()
    process.kill()
    process.wait()


def test_the_worker_is_found_by_its_rank_and_not_its_child(
    worker: subprocess.Popen[bytes],
) -> None:
    me = psutil.Process()
    assert psutil.Process(worker.pid).children(), "the worker's child runs"
    assert find_worker(me, 3) == worker.pid
    assert find_worker(me, 4) is None
