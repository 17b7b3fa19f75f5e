"""What a finished pod leaves behind: nothing in /dev/shm, no zombie shim in the controller.

Reproduces two reports: every run left empty ``/dev/shm/trainguard-*/node-N/`` directories, and
the shim of a SIGKILLed agent stayed a zombie child of the controller until it exited.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.integration.local.test_pod_shim import family, launch, pod_env, wait_for
from trainguard.backends.local import LocalBackend

pytestmark = pytest.mark.slow
__all__ = ["pod_env"]  # the fixture, shared with the shim's tests


def _zombie_children() -> list[int]:
    return [p.pid for p in psutil.Process().children() if p.status() == psutil.STATUS_ZOMBIE]


def test_the_shim_of_a_killed_agent_is_reaped_by_the_next_step(
    pod_env: tuple[LocalBackend, Path], tmp_path: Path
) -> None:
    backend, pids_file = pod_env
    pod = backend.create_pod(launch(tmp_path), now=time.time())
    wait_for(lambda: len(family(pids_file)) == 3)
    os.kill(family(pids_file)[0], signal.SIGKILL)
    assert pod.pid is not None
    wait_for(lambda: psutil.Process(pod.pid).status() == psutil.STATUS_ZOMBIE)
    assert pod.pid in _zombie_children()  # the shim exited; the controller must wait for it
    backend.step(now=time.time())  # what every controller step does first
    assert pod.pid not in _zombie_children()
    assert not psutil.pid_exists(pod.pid)
    assert not backend.pod_alive(pod)


def test_releasing_the_last_job_leaves_nothing_in_shared_memory(
    pod_env: tuple[LocalBackend, Path], tmp_path: Path
) -> None:
    backend, _ = pod_env
    backend.cluster.ensure_nodes(2, now=time.time())
    first = launch(tmp_path)
    second = dataclasses.replace(first, job="k", job_uid="v" * 8, pod="k-pods-0")
    pods = [backend.create_pod(one, now=time.time()) for one in (first, second)]
    root = backend.cluster.shm_root
    assert root.is_relative_to("/dev/shm") and (root / "node-0").is_dir()
    for pod in pods:
        backend.delete_pod(pod, grace=1.0)
    backend.release_job("default", "j", first.job_uid)
    assert [p.name for p in (root / "node-0").iterdir()] == ["default.k.vvvvvvvv"]
    backend.release_job("default", "k", second.job_uid)
    assert not root.exists(), sorted(str(p) for p in root.rglob("*"))
    assert not list(Path("/dev/shm").glob(f"{root.name}*"))
