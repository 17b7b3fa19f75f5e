"""Issue 13 item 6 and kubectl habits, on a real local cluster: logs, apply, watch, pods.

Before the fix ``job logs`` asked the pod's agent, so logs were gone once ``cleanPodPolicy:
All`` removed the pods although the files were on disk, ``-f`` re-read the log on every poll
and there was no ``--previous``; ``job apply``, ``job delete -f``, ``job list -w`` and
``job pods`` did not exist; ``job describe`` printed ``None``.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.integration.cli.cluster import Local

pytestmark = pytest.mark.slow


def wait_for(condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout} s")


def test_logs_are_read_from_disk_after_clean_pod_policy_all(local: Local) -> None:
    ran = local.cli("run", str(local.tiny_job(lines=5)), timeout=240)
    assert ran.returncode == 0, ran.stderr
    assert "Pods:           -" in ran.stdout  # cleanPodPolicy All removed them
    logs = local.cli("job", "logs", "tiny")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == [f"line {i} attempt 0" for i in range(5)]
    assert local.cli("job", "logs", "tiny", "--tail", "2").stdout.splitlines() == [
        "line 3 attempt 0",
        "line 4 attempt 0",
    ]
    none = local.cli("job", "logs", "tiny", "--previous")
    assert none.returncode == 1 and "rank 0 of job tiny has no previous attempt" in none.stderr
    missing = local.cli("job", "logs", "nope")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_previous_shows_the_attempt_that_crashed_and_describe_prints_no_none(
    local: Local,
) -> None:
    job = local.tiny_job(lines=3, code=1, runPolicy={"jobMaxRetryCount": 1})
    script = local.work / "tiny.py"  # crash on the first attempt only
    script.write_text(script.read_text().replace("sys.exit(1)", "sys.exit(attempt == '0')"))
    ran = local.cli("run", str(job), timeout=240)
    assert ran.returncode == 0, ran.stderr
    assert "None" not in ran.stdout, ran.stdout
    assert "Last Fault:" in ran.stdout and "['" not in ran.stdout  # no Python list repr
    assert "pods=tiny-pods-0" in ran.stdout, ran.stdout
    current = local.cli("job", "logs", "tiny").stdout.splitlines()
    previous = local.cli("job", "logs", "tiny", "--previous").stdout.splitlines()
    assert current == [f"line {i} attempt 1" for i in range(3)]
    assert previous == [f"line {i} attempt 0" for i in range(3)]
    described = local.cli("job", "describe", "tiny")
    assert described.returncode == 0 and "None" not in described.stdout, described.stdout


def test_follow_prints_each_line_once_then_ends_with_the_job(local: Local) -> None:
    job = local.tiny_job(lines=40, pause=0.25, runPolicy={"cleanPodPolicy": "None"})
    assert local.cli("cluster", "up", "--nodes", "2").returncode == 0
    assert local.cli("job", "create", "-f", str(job)).returncode == 0
    wait_for(lambda: "line 3 " in local.cli("job", "logs", "tiny").stdout)
    pods = local.cli("job", "pods", "tiny")
    header, *rows = pods.stdout.splitlines()
    assert header.split() == ["NAME", "NODE", "ROLE", "STATUS", "ATTEMPT", "RESTARTS", "AGE"]
    assert len(rows) == 1 and rows[0].split()[:6] == ["tiny-pods-0", rows[0].split()[1],
                                                      "rank", "0", "Running", "0"]  # fmt: skip
    follow = local.popen("job", "logs", "tiny", "-f")
    out, err = follow.communicate(timeout=180)
    assert follow.returncode == 0, err
    lines = out.splitlines()
    assert lines == [f"line {i} attempt 0" for i in range(40)], out


def test_apply_is_idempotent_and_delete_takes_the_manifest(local: Local) -> None:
    job = local.tiny_job()
    first = local.cli("job", "apply", "-f", str(job))
    assert first.returncode == 0 and first.stdout.strip() == "hyperpodpytorchjob/tiny created"
    again = local.cli("job", "apply", "-f", str(job))
    assert again.returncode == 0 and again.stdout.strip() == "hyperpodpytorchjob/tiny unchanged"
    job.write_text(job.read_text().replace("replicas: 1", "replicas: 2"))
    changed = local.cli("job", "apply", "-f", str(job))
    assert changed.returncode == 1
    assert "hyperpodpytorchjob/tiny: changed spec of an existing job" in changed.stderr
    assert f"delete it first (trainguard job delete -f {job})" in changed.stderr
    deleted = local.cli("job", "delete", "-f", str(job))
    assert deleted.returncode == 0 and deleted.stdout.strip() == "job tiny deleted"
    assert local.cli("job", "list", "-o", "jsonpath={.items}").stdout == "[]"
    neither = local.cli("job", "delete")
    assert neither.returncode == 2 and "give a job name or -f FILE" in neither.stderr


def test_list_watch_prints_changes_until_interrupted(local: Local) -> None:
    local.cli("job", "create", "-f", str(local.tiny_job("first")))
    watch = local.popen("job", "list", "-w")
    try:
        time.sleep(3)  # the first listing is printed
        local.cli("job", "create", "-f", str(local.tiny_job("second", file="second.yaml")))
        local.cli("job", "delete", "first")
        time.sleep(3)
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
    assert watch.returncode == 0, err
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][:3] == ["NAME", "NAMESPACE", "STATUS"]
    assert rows[1][:2] == ["first", "default"]
    assert rows[2][:2] == ["second", "default"]
    assert rows[3][:4] == ["first", "default", "Deleted", "-"]
    assert len(rows) == 4, out


def test_watch_refuses_document_formats(local: Local) -> None:
    done = local.cli("job", "list", "-w", "-o", "json")
    assert done.returncode == 2 and "--watch prints table rows" in done.stderr
    assert isinstance(done, subprocess.CompletedProcess)
