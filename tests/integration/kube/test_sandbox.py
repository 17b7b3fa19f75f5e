"""A pod's processes on a fake node, without an API server: start, exit codes, restarts, stop."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from trainguard.testing.kube.processes import host_image_env
from trainguard.testing.kube.sandbox import PodSandbox

pytestmark = pytest.mark.slow


def no_objects(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    return None


def sandbox(tmp_path: Path, script: str, *, policy: str = "Never", **container: Any) -> PodSandbox:
    pod = {
        "metadata": {"name": "p", "namespace": "default", "uid": "u"},
        "spec": {
            "restartPolicy": policy,
            "containers": [
                {"name": "main", "command": [sys.executable, "-c", script], **container}
            ],
        },
    }
    return PodSandbox(
        pod,
        node_name="node-0",
        host_ip="127.0.1.1",
        pod_ip="127.1.0.2",
        pod_dir=tmp_path,
        image_env=host_image_env(),
        restart_backoff_seconds=0.05,
    )


def settle(box: PodSandbox, until: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, box.containers
        box.sync(no_objects)
        time.sleep(0.05)


def test_exit_codes_and_logs(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "import sys; print('bye'); sys.exit(3)")
    settle(box, lambda: box.containers[0].terminated)
    status = box.status({})
    assert status["phase"] == "Failed"
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert box.log_path("main").read_text() == "bye\n"


def test_a_command_not_on_path_is_a_start_error(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "")
    box.pod["spec"]["containers"][0]["command"] = ["no-such-binary-here"]
    box.sync(no_objects)
    terminated = box.status({})["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "StartError"
    assert terminated["exitCode"] == 128
    assert (
        'exec: "no-such-binary-here": executable file not found in $PATH' in terminated["message"]
    )


def test_on_failure_restarts_with_back_off(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "import sys; sys.exit(1)", policy="OnFailure")
    settle(box, lambda: box.containers[0].restart_count >= 2)
    status = box.status({})
    assert status["phase"] == "Running"
    assert status["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
    box.kill()


def test_graceful_stop_sigterm_handled(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "import time; print('up', flush=True); time.sleep(60)")
    settle(box, lambda: box.log_path("main").exists() and box.log_path("main").read_text())
    box.terminate(30)
    settle(box, lambda: box.stopped, timeout=10)
    assert box.containers[0].exit_code == 143  # 128 + SIGTERM


def test_graceful_stop_sigterm_ignored_is_killed_after_grace(tmp_path: Path) -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    box = sandbox(tmp_path, script)
    settle(box, lambda: box.log_path("main").exists() and box.log_path("main").read_text())
    box.terminate(2)
    settle(box, lambda: box.stopped, timeout=15)
    assert box.containers[0].exit_code == 137  # 128 + SIGKILL


def test_kill_reaches_a_child_that_left_the_group(tmp_path: Path) -> None:
    script = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],"
        " start_new_session=True)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    box = sandbox(tmp_path, script)
    log = box.log_path("main")
    settle(box, lambda: log.exists() and log.read_text().strip())
    child = psutil.Process(int(log.read_text()))
    box.kill()
    child.wait(timeout=10)
    assert not box.processes


# A daemon: a grandchild that left the session and was orphaned (its parent exited at once), so it
# is in neither the container's process group nor its process tree. torch's workers are
# session leaders too; an agent that dies mid-start leaves them exactly so.
DAEMONIZE = (
    "import subprocess, sys\n"
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],"
    " start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "print(p.pid)\n"
)
ORPHAN = (
    "import subprocess, sys\n"
    f"out = subprocess.run([sys.executable, '-c', {DAEMONIZE!r}], capture_output=True, text=True)\n"
    "print(out.stdout.strip(), flush=True)\n"
)


def orphan_of(box: PodSandbox) -> psutil.Process:
    log = box.log_path("main")
    settle(box, lambda: log.exists() and log.read_text().strip())
    orphan = psutil.Process(int(log.read_text().split()[0]))
    assert orphan.ppid() not in {p.pid for p in box.processes.values()}
    return orphan


def test_an_orphan_dies_with_the_container_when_its_main_process_exits(tmp_path: Path) -> None:
    box = sandbox(tmp_path, ORPHAN)
    orphan = orphan_of(box)
    settle(box, lambda: box.containers[0].terminated)
    assert box.containers[0].exit_code == 0
    orphan.wait(timeout=10)  # killed as the kernel kills a PID namespace whose init exited


def test_kill_reaches_an_orphan_outside_the_tree(tmp_path: Path) -> None:
    box = sandbox(tmp_path, ORPHAN + "import time; time.sleep(120)\n")
    orphan = orphan_of(box)
    assert orphan.is_running()
    box.kill()
    orphan.wait(timeout=10)
    assert not box.processes
