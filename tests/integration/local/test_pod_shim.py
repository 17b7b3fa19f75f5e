"""The local pod shim behaves like a container: nothing a pod started outlives it.

A stand-in agent forks a worker that forks a grandchild in a new session (as torch's
process context does) and one that ignores SIGTERM; we kill the agent with SIGKILL, or delete
the pod, and check every process is gone and reaped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from trainguard.backends.base import PodLaunch
from trainguard.backends.local import LocalBackend
from trainguard.backends.local import backend as backend_module
from trainguard.spec.k8s import Container
from trainguard.store import SqliteStore

pytestmark = pytest.mark.slow

FAKE_AGENT = Path(__file__).with_name("fake_agent.py")


def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def pod_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalBackend, Path]]:
    script = FAKE_AGENT
    pids_file = tmp_path / "pids.txt"
    monkeypatch.setattr(
        backend_module,
        "agent_argv",
        lambda command, nproc_per_node, **_: [sys.executable, str(script), str(pids_file)],
    )
    store = SqliteStore(tmp_path / "state.db")
    backend = LocalBackend(store=store, home=tmp_path / "home")
    yield backend, pids_file
    for line in pids_file.read_text().split() if pids_file.exists() else []:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line), signal.SIGKILL)


def launch(tmp_path: Path) -> PodLaunch:
    return PodLaunch(
        namespace="default",
        job="j",
        job_uid="u" * 8,
        pod="j-pods-0",
        node="node-0",
        replica_spec="pods",
        node_rank=0,
        spare=False,
        attempt=0,
        container=Container(name="c", command=["python", "x.py"]),
        nproc_per_node="1",
        nnodes=1,
        token="t",
        source_dir=str(tmp_path),
    )


def family(pids_file: Path) -> list[int]:
    return [int(p) for p in pids_file.read_text().split()] if pids_file.exists() else []


def all_gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def test_killing_the_agent_takes_down_its_workers(
    pod_env: tuple[LocalBackend, Path], tmp_path: Path
) -> None:
    backend, pids_file = pod_env
    pod = backend.create_pod(launch(tmp_path), now=time.time())
    wait_for(lambda: len(family(pids_file)) == 3)
    assert backend.pod_alive(pod)
    agent_pid = family(pids_file)[0]
    os.kill(agent_pid, signal.SIGKILL)
    wait_for(lambda: not backend.pod_alive(pod))
    wait_for(lambda: all_gone(family(pids_file)))
    exit_info = json.loads((Path(pod.info["dir"]) / "exit.json").read_text())
    assert exit_info["code"] == 128 + signal.SIGKILL


def test_deleting_the_pod_kills_everything_even_sigterm_ignorers(
    pod_env: tuple[LocalBackend, Path], tmp_path: Path
) -> None:
    backend, pids_file = pod_env
    pod = backend.create_pod(launch(tmp_path), now=time.time())
    wait_for(lambda: len(family(pids_file)) == 3)
    backend.delete_pod(pod, grace=2.0)
    assert not backend.pod_alive(pod)
    wait_for(lambda: all_gone([pod.pid or 0, *family(pids_file)]))


def test_signal_refuses_processes_outside_the_pod(
    pod_env: tuple[LocalBackend, Path], tmp_path: Path
) -> None:
    from trainguard.errors import BackendError

    backend, pids_file = pod_env
    pod = backend.create_pod(launch(tmp_path), now=time.time())
    wait_for(lambda: len(family(pids_file)) == 3)
    with pytest.raises(BackendError):
        backend.signal(pod, os.getpid(), signal.SIGTERM)
    backend.delete_pod(pod, grace=1.0)


def test_environment_carries_what_hyperpod_and_the_agent_need(
    pod_env: tuple[LocalBackend, Path], tmp_path: Path
) -> None:
    backend, _ = pod_env
    env = backend._environment(
        launch(tmp_path), port=1234, directory=tmp_path, memory=tmp_path / "m"
    )
    assert env["NNODES"] == "1" and env["NPROC_PER_NODE"] == "1" and env["POD_NAME"] == "j-pods-0"
    assert env["TRAINGUARD_AGENT_PORT"] == "1234" and env["TRAINGUARD_AGENT_HOST"] == "127.0.0.1"
    assert env["TRAINGUARD_AGENT_TOKEN"] == "t" and env["TRAINGUARD_SHM_DIR"].endswith("m")
    assert env["TRAINGUARD_JOB_UID"] and env["TRAINGUARD_JOB_NAMESPACE"] == "default"
    assert "checkpoints" in env["TRAINGUARD_CHECKPOINT_DIR"]


def test_an_agent_that_exits_at_once_reports_its_code_and_last_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = "hyperpodrun: error: unrecognized arguments: --bogus"
    argv = [sys.executable, "-c", f"import sys; print({said!r}, file=sys.stderr); sys.exit(2)"]
    monkeypatch.setattr(backend_module, "agent_argv", lambda command, nproc_per_node, **_: argv)
    backend = LocalBackend(store=SqliteStore(tmp_path / "state.db"), home=tmp_path / "home")
    pod = backend.create_pod(launch(tmp_path), now=time.time())
    wait_for(lambda: not backend.pod_alive(pod))
    assert backend.pod_failure(pod) == f"agent exited with code 2: {said}"


def test_signalling_a_process_that_exited_says_it_exited_not_that_it_is_foreign(
    pod_env: tuple[LocalBackend, Path], tmp_path: Path
) -> None:
    from trainguard.errors import BackendError

    backend, pids_file = pod_env
    pod = backend.create_pod(launch(tmp_path), now=time.time())
    wait_for(lambda: len(family(pids_file)) == 3)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a stale pid, as a finished worker's is
    with pytest.raises(BackendError, match=f"process {gone.pid} is not running"):
        backend.signal(pod, gone.pid, signal.SIGKILL)
    backend.delete_pod(pod, grace=1.0)
