"""Workers forked by the agent's zygote are the processes a cold start would give them.

Two real agents run `process_facts.py`: one by default (zygote), one with ``--cold-start``.
Every observable fact of the workers (argv, environment, cwd, stdio, other fds, signal
dispositions and mask, session, rlimits, umask, threads, CUDA, logging's lock) must be equal
once the per-agent paths are normalised; then the fallbacks: a dead zygote, and one that
refuses to be ready because a thread pool started at import. Last, `ForkedProcess`, the
``Popen`` stand-in for an adopted worker.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.agent.harness import SCRIPTS, AgentProcess, free_port, wait_for
from trainguard.agent.protocol import AgentState
from trainguard.agent.zygote_client import ForkedProcess, ZygoteUnavailable

FACTS = str(SCRIPTS / "process_facts.py")
DEFAULT_PATH = {"TRAINGUARD_COLD_START": "0"}  # tests/conftest.py makes cold the tests' default


def _run(
    tmp_path: Path, name: str, *flags: str, env: dict[str, str] | None = None
) -> tuple[AgentProcess, Path]:
    out = tmp_path / name / "out"
    argv = ["--nproc-per-node=2", "--nnodes=1", *flags, FACTS, "--out", str(out)]
    agent = AgentProcess(tmp_path, name, argv, env=DEFAULT_PATH | (env or {}))
    out.mkdir()
    return agent, out


def _finish(agent: AgentProcess, *, master_port: int) -> None:
    agent.start(0, 1, master_port)
    agent.wait_state(AgentState.COMPLETED, timeout=180)


def _facts(agent: AgentProcess, out: Path) -> list[dict[str, Any]]:
    """Each rank's facts with what differs by construction between two agents replaced."""
    text = "\n".join((out / f"rank{rank}.json").read_text() for rank in range(2))
    text = text.replace(str(agent.dir), "<pod>").replace(agent.name, "<name>")
    text = text.replace(f'"{agent.port}"', '"<port>"')
    text = re.sub(r"hyperpod_elastic_agent_\d+", "<socket>", text)
    text = re.sub(r"none_[A-Za-z0-9_]{8}", "<run>", text)
    text = re.sub(r"trainguard-[a-z0-9_]{8}", "<shm>", text)
    facts = [json.loads(part) for part in re.split(r"\n(?=\{)", text)]
    for rank in facts:
        assert rank.pop("ppid") == agent.proc.pid  # the agent reaps and watches both kinds
        rank["seed"] = rank.pop("torch_seed")
    return facts


@pytest.mark.slow
def test_a_forked_worker_is_what_a_cold_start_gives(tmp_path: Path) -> None:
    port = free_port()
    observed = {}
    for name, flags in (("zyg-pod", ()), ("cold-pod", ("--cold-start",))):
        agent, out = _run(tmp_path, name, *flags)
        try:
            _finish(agent, master_port=port)
            observed[name] = _facts(agent, out)
        finally:
            agent.close()
    forked, cold = observed["zyg-pod"], observed["cold-pod"]
    assert [r.pop("forked") for r in forked] == [True, True]
    assert [r.pop("forked") for r in cold] == [False, False]
    assert all(r.pop("frozen_objects") > 10_000 for r in forked)  # torch's, never collected
    assert [r.pop("frozen_objects") for r in cold] == [0, 0]
    for ours, theirs in zip(forked, cold, strict=True):
        assert ours.pop("seed") != theirs.pop("seed")  # each process seeds its own generator
    assert forked == cold
    assert forked[0]["signals"]["SigCgt"] == cold[0]["signals"]["SigCgt"] != "0" * 16
    assert forked[0]["threads_after_import"] == 1
    assert forked[0]["session_leader"] and forked[0]["group_leader"]
    assert not forked[0]["cuda_initialized"] and forked[0]["logging_lock_free"]


def _zygote_of(agent: AgentProcess) -> psutil.Process | None:
    for child in psutil.Process(agent.proc.pid).children():
        if "trainguard.agent.zygote" in " ".join(child.cmdline()):
            return child
    return None


def _dead(process: psutil.Process) -> bool:
    """Exited (a zombie until its parent, the agent, reaps it)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_a_dead_zygote_means_a_cold_start_and_a_new_zygote(tmp_path: Path) -> None:
    env = {"TRAINGUARD_SPARE_REFILL_DELAY": "0"}
    agent, out = _run(tmp_path, "pod", env=env)
    try:
        first = wait_for("the zygote", lambda: _zygote_of(agent), timeout=30)
        first.send_signal(signal.SIGKILL)
        wait_for("the zygote to die", lambda: _dead(first), timeout=10)
        _finish(agent, master_port=free_port())
        assert [r["forked"] for r in _facts(agent, out)] == [False, False]
        assert "zygote unavailable" in agent.text()
        second = wait_for("a new zygote", lambda: _zygote_of(agent), timeout=30)
        assert second.pid != first.pid
    finally:
        agent.close()


@pytest.mark.slow
def test_a_zygote_with_threads_refuses_and_workers_start_cold(tmp_path: Path) -> None:
    # Several OpenMP/BLAS threads at import (NumPy's OpenBLAS pool) make forking unsafe.
    agent, out = _run(tmp_path, "pod", env={"OMP_NUM_THREADS": "2"})
    try:
        _finish(agent, master_port=free_port())
        assert [r["forked"] for r in _facts(agent, out)] == [False, False]
        assert "threads after the imports" in agent.text()
        assert "not using a zygote on this node any more" in agent.text()
    finally:
        agent.close()


def _spawn_child() -> int:
    return os.posix_spawn("/bin/sleep", ["sleep", "30"], dict(os.environ))


def test_an_adopted_child_is_polled_waited_and_killed_like_popen() -> None:
    worker = ForkedProcess.adopt(_spawn_child(), args=["sleep", "30"])
    assert worker.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        worker.wait(timeout=0.05)
    worker.kill()
    assert worker.wait(timeout=10) == -signal.SIGKILL
    assert worker.poll() == -signal.SIGKILL


def test_a_process_that_is_not_our_child_is_killed_not_adopted() -> None:
    shell = subprocess.run(
        ["sh", "-c", "setsid sleep 30 >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        check=True,
    )
    orphan = int(shell.stdout)
    with pytest.raises(ZygoteUnavailable, match="not this agent"):
        ForkedProcess.adopt(orphan, args=["sleep"])
    wait_for("the orphan to die", lambda: _dead(psutil.Process(orphan)), timeout=10)
