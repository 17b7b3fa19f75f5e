"""A real agent under hostile HTTP: oversized bodies, big 422s, thousands of idle connections.

Each test reproduces a report: a 100 MB authenticated ``/update`` took the agent to 1.76 GB RSS
and was echoed back in the 422; 20k idle connections used up its descriptors and it died.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration import rawhttp
from tests.integration.agent.harness import SCRIPTS, TOKEN, AgentProcess, agents, wait_for
from trainguard.agent.protocol import AgentState
from trainguard.httpguard import HEADER_TIMEOUT_S, MAX_BODY_BYTES, MAX_QUOTE_CHARS

ARGV = ["--nproc-per-node=2", "--nnodes=1", str(SCRIPTS / "agent_worker.py")]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HUNDRED_MB = 100 * rawhttp.MB


def _rss(pod: AgentProcess) -> int:
    return int(psutil.Process(pod.proc.pid).memory_info().rss)


@pytest.mark.slow
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_100_mb_authenticated_body_gets_413_and_memory_stays_bounded(
    tmp_path: Path, declared: bool
) -> None:
    with agents(tmp_path, 1, ARGV) as (pod,):
        before = _rss(pod)
        body = rawhttp.json_body(HUNDRED_MB)
        request = rawhttp.head("/update", token=TOKEN, length=HUNDRED_MB if declared else None)
        started = time.monotonic()
        answer = rawhttp.send(pod.port, request, body if declared else rawhttp.chunked(body))
        assert rawhttp.status_of(answer) == 413, answer[:300]
        assert time.monotonic() - started < 60  # refused, not read to the end
        assert len(answer) < 1000
        assert _rss(pod) - before < 50 * rawhttp.MB
        assert pod.status().status is AgentState.READY


def test_a_wrong_token_gets_401_before_the_body_is_sent(tmp_path: Path) -> None:
    with agents(tmp_path, 1, ARGV) as (pod,):
        answer = rawhttp.send(
            pod.port, rawhttp.head("/update", token="wrong", length=HUNDRED_MB), timeout=10
        )
        assert rawhttp.status_of(answer) == 401, answer[:300]


def test_a_422_quotes_little_of_a_big_bad_value(tmp_path: Path) -> None:
    with agents(tmp_path, 1, ARGV) as (pod,):
        big = "(" * (MAX_BODY_BYTES // 3)
        for body in (
            {"log_monitoring_configuration": big},
            {"log_monitoring_configuration": [{"name": big, "logPattern": big}]},
            {"log_monitoring_configuration": [{"name": "x", "logPattern": big}]},
        ):
            answer = httpx.post(pod.url + "/update", json=body, headers=AUTH, timeout=30)
            assert answer.status_code == 422, answer.text[:300]
            assert len(answer.content) < 20 * MAX_QUOTE_CHARS, answer.text[:300]


@pytest.mark.slow
def test_thousands_of_idle_connections_neither_kill_nor_block_the_agent(tmp_path: Path) -> None:
    with agents(tmp_path, 1, [*ARGV, "--steps", "5", "--socket"], nofile=256) as (pod,):
        idle = rawhttp.idle_connections(pod.port, 3000)
        try:
            assert len(idle) > 1000
            time.sleep(1)
            assert pod.proc.poll() is None, pod.text()[-2000:]
            answer = httpx.get(pod.url + "/status", headers=AUTH, timeout=10)
            assert answer.status_code in (200, 503)
            # the silent connections are dropped after the header deadline, never by the client
            wait_for("the API to answer", pod.status, timeout=HEADER_TIMEOUT_S + 30)
            pod.start(0, 1, 1)
            done = pod.wait_state(AgentState.COMPLETED, timeout=60)
            assert done.progress is not None  # the worker reached the agent's socket
            assert pod.proc.poll() is None
        finally:
            for sock in idle:
                sock.close()
