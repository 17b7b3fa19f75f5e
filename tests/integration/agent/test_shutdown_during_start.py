"""An agent that is stopped while it starts its workers, or killed outright, leaves nothing.

The defect (seen as ``EADDRINUSE`` on the next job's rendezvous port in CI): torch's process
context installed a handler for the start that raised ``SignalException`` on SIGTERM wherever
the start was, so a worker already started could be known to no handler (between torch's
``Popen`` and its dict of handlers, or forked by the zygote while the agent waited for the
reply); leading its own session, it survived the agent. Raised inside ``logging``'s fork hook,
the exception was swallowed and the agent ran on. And a SIGKILL of the agent (the end of a
grace period) reached none of its workers.

Every process of an agent's tree is found by a marker in the environment the test gives the
agent: its workers inherit it, and so do the zygote and what the zygote forks (their
``/proc/<pid>/environ`` is the zygote's, which is the agent's). Real agents, real workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests.integration.agent.harness import SCRIPTS, AgentProcess, free_port, wait_for
from trainguard.agent.protocol import AgentState

WORKER = str(SCRIPTS / "agent_worker.py")
MARKER = "TRAINGUARD_TEST_TREE"
NPROC = 3


def _agent(tmp_path: Path, name: str, *flags: str, cold: bool) -> tuple[AgentProcess, str]:
    marker = uuid.uuid4().hex
    worker = [WORKER, "--steps", "1", "--forever-on-restart", "--marker", marker]
    argv = [f"--nproc-per-node={NPROC}", "--nnodes=1", *flags, *worker]  # first start: 1 step
    env = {MARKER: marker, "TRAINGUARD_COLD_START": "1" if cold else "0"}
    return AgentProcess(tmp_path, name, argv, env=env), marker


def _tree(marker: str) -> list[psutil.Process]:
    """Living processes with ``marker`` in their environment (the agent, the zygote, cold
    workers) or on their command line (every worker: a forked one or a hot spare shows its
    command line as its title, which overwrites the ``/proc`` environment it inherited)."""
    found = []
    for proc in psutil.process_iter(["status", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            titled = any(marker in part for part in proc.info["cmdline"] or [])
            if titled or proc.environ().get(MARKER) == marker:
                found.append(proc)
    return found


def _assert_nothing_left(pod: AgentProcess, marker: str) -> None:
    """The agent exits; a moment later (the kernel delivers a parent-death signal after the
    exit) no process of its tree is alive."""
    pod.proc.wait(timeout=60)
    deadline = time.monotonic() + 5
    while (left := _tree(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    commands = [" ".join(proc.cmdline()) for proc in left]
    for proc in left:  # do not leak them into the next test
        with contextlib.suppress(psutil.Error):
            proc.kill()
    assert commands == [], pod.text()


def _worker_pids(pod: AgentProcess) -> list[int]:
    extension = pod.status().trainguard
    return list(extension.worker_pids) if extension is not None else []


def _zygote(pod: AgentProcess) -> psutil.Process:
    children = psutil.Process(pod.proc.pid).children()
    return next(p for p in children if "trainguard.agent.zygote" in " ".join(p.cmdline()))


@pytest.mark.slow
def test_sigterm_while_the_zygote_forks_stops_what_it_forked(tmp_path: Path) -> None:
    """The zygote is ready (a first start used it) and stopped, so the agent waits for its
    reply to the first fork when SIGTERM comes, twice; then the zygote is let go (before the
    fix, the worker it forked then belonged to no handler and outlived the agent)."""
    pod, marker = _agent(tmp_path, "zygote-pod", cold=False)
    try:
        pod.start(0, 1, free_port())
        pod.wait_state(AgentState.COMPLETED, timeout=120)
        pod.client.stop()
        pod.wait_state(AgentState.READY, timeout=30)
        zygote = _zygote(pod)
        zygote.suspend()
        pod.start(0, 1, free_port(), faultCount=1)
        time.sleep(1.0)  # the agent sent the fork request and waits
        for _ in range(2):
            os.kill(pod.proc.pid, signal.SIGTERM)
            time.sleep(0.05)
        zygote.resume()
        _assert_nothing_left(pod, marker)
        assert "Traceback" not in pod.text()
    finally:
        pod.close()


@pytest.mark.slow
def test_sigterm_at_any_point_of_a_cold_start_leaves_nothing(tmp_path: Path) -> None:
    """SIGTERM (a second one on every other agent) at staggered delays after ``/start``, so
    some land while torch's ``Popen`` loop runs."""
    for index, delay in enumerate((0.02, 0.06, 0.1)):
        pod, marker = _agent(tmp_path, f"cold-{index}", "--cold-start", cold=True)
        try:
            pod.start(0, 1, free_port(), faultCount=1)
            time.sleep(delay)
            for _ in range(1 + index % 2):
                os.kill(pod.proc.pid, signal.SIGTERM)
            _assert_nothing_left(pod, marker)
        finally:
            pod.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "cold"),
    [((), True), ((), False), (("--hot-spares", "--spare-preload="), True)],
    ids=["cold", "zygote", "hot-spares"],
)
def test_a_sigkilled_agent_takes_its_workers_along(
    tmp_path: Path, flags: tuple[str, ...], cold: bool
) -> None:
    """SIGKILL, as after the grace period: no handler of the agent runs, the kernel's
    parent-death signal stops the workers (each leads its own session)."""
    pod, marker = _agent(tmp_path, "killed-pod", *flags, cold=cold)
    try:
        pod.start(0, 1, free_port(), faultCount=1)
        wait_for("the workers", lambda: len(_worker_pids(pod)) == NPROC, timeout=120)
        assert {p.pid for p in _tree(marker)} >= set(_worker_pids(pod))
        pod.proc.kill()
        _assert_nothing_left(pod, marker)
    finally:
        pod.close()
