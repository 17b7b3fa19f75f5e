"""Agent behaviour with torch-free workers: auth, hang rules, stubborn and forking workers,
pre/post-train scripts, the worker socket."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.agent.harness import (
    SCRIPTS,
    TOKEN,
    AgentProcess,
    agents,
    free_port,
    processes_mentioning,
    wait_for,
)
from trainguard.agent.protocol import AgentState

WORKER = str(SCRIPTS / "agent_worker.py")
START = {"rank": 0, "nnodes": 1, "faultCount": 0, "master_addr": "127.0.0.1", "master_port": 1}


def _argv(*worker_args: str, nproc: int = 2, agent: tuple[str, ...] = ()) -> list[str]:
    return [f"--nproc-per-node={nproc}", "--nnodes=1", *agent, WORKER, *worker_args]


def test_requests_without_the_token_change_nothing(tmp_path: Path) -> None:
    with agents(tmp_path, 1, _argv("--steps", "5")) as (pod,):
        before = pod.status()
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            for method, path in (("POST", "/start"), ("POST", "/stop"), ("POST", "/shutdown")):
                body = START if path == "/start" else None
                answer = httpx.request(method, pod.url + path, json=body, headers=headers)
                assert answer.status_code == 401, (path, headers)
            assert httpx.get(pod.url + "/status", headers=headers).status_code == 401
            assert httpx.post(pod.url + "/update", json=START, headers=headers).status_code == 401
        after = pod.status()
        assert after.status is AgentState.READY
        assert after.transitions == before.transitions
        assert pod.proc.poll() is None
        assert "Step:" not in pod.text()


def test_agent_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="no API token"):
        AgentProcess(tmp_path, "tokenless", _argv(), token=None)


def test_state_table_conflicts_and_bad_bodies(tmp_path: Path) -> None:
    with agents(tmp_path, 1, _argv("--steps", "0")) as (pod,):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.post(pod.url + "/stop", headers=headers).status_code == 200
        bad_rule = START | {"log_monitoring_configuration": [{"name": "x", "logPattern": "("}]}
        answer = httpx.post(pod.url + "/start", json=bad_rule, headers=headers)
        assert answer.status_code == 422 and "logPattern" in answer.text
        assert httpx.post(pod.url + "/start", json={"rank": 0}, headers=headers).status_code == 422
        assert pod.status().status is AgentState.READY
        assert httpx.post(pod.url + "/start", json=START, headers=headers).status_code == 200
        assert httpx.get(pod.url + "/logs?rank=7", headers=headers).status_code == 404


@pytest.mark.slow
def test_hang_rule_fires_for_a_worker_that_stops_printing(tmp_path: Path) -> None:
    rules = [
        {"name": "JobStart", "logPattern": ".*Loss:.*", "expectedStartCutOffInSeconds": 60},
        {"name": "Hang", "logPattern": "Loss: ", "expectedRecurringFrequencyInSeconds": 2},
    ]
    argv = _argv("--step-time", "0.1", "--hang-rank", "1", "--hang-after", "10")
    with agents(tmp_path, 1, argv) as (pod,):
        pod.start(0, 1, free_port(), log_monitoring_configuration=rules)
        faulted = pod.wait_state(AgentState.FAULTED, timeout=60)
        assert faulted.reason == "LogHang_Hang"
        assert "rank 1" in (faulted.message or "") and "Loss: " in (faulted.message or "")
        assert faulted.trainguard is not None and faulted.trainguard.rules["Hang"] == "HANGING"
        assert faulted.trainguard.rules["JobStart"] == "HEALTHY"


@pytest.mark.slow
def test_silent_checkpoint_saves_are_no_hang(tmp_path: Path) -> None:
    rules = [{"name": "Hang", "logPattern": "Loss: ", "expectedRecurringFrequencyInSeconds": 2}]
    argv = _argv("--steps", "30", "--save-every", "10", "--save-time", "4")
    with agents(tmp_path, 1, argv) as (pod,):
        pod.start(0, 1, free_port(), log_monitoring_configuration=rules)
        done = pod.wait_state(AgentState.COMPLETED, timeout=90)
        assert done.trainguard is not None and done.trainguard.rules == {"Hang": "HEALTHY"}


@pytest.mark.slow
def test_a_rank_that_finished_early_is_no_hang(tmp_path: Path) -> None:
    """Rank 0 exits 0 after 5 steps, rank 1 prints for 4 s more (a final save at the end of a
    job looks so): a finished rank's silence is not a hang."""
    rules = [{"name": "Hang", "logPattern": "Loss: ", "expectedRecurringFrequencyInSeconds": 2}]
    argv = _argv("--steps", "40", "--step-time", "0.1", "--exit-rank", "0", "--exit-after", "5")
    with agents(tmp_path, 1, argv) as (pod,):
        pod.start(0, 1, free_port(), log_monitoring_configuration=rules)
        done = pod.wait_state(AgentState.COMPLETED, timeout=90)
        assert done.trainguard is not None and done.trainguard.rules == {"Hang": "HEALTHY"}


@pytest.mark.slow
def test_stubborn_and_forking_workers_leave_no_orphans(tmp_path: Path) -> None:
    marker = f"tg-marker-{uuid.uuid4().hex}"
    agent = ("--shutdown-signal", "SIGTERM", "--shutdown-timeout", "1")
    argv = _argv("--ignore-term", "--fork", "--marker", marker, agent=agent)
    with agents(tmp_path, 1, argv) as (pod,):
        pod.start(0, 1, free_port())
        wait_for(
            "workers and their children",
            lambda: len(processes_mentioning(marker, but=pod.proc.pid)) >= 6,
        )
        pod.client.stop()
        pod.wait_state(AgentState.READY, timeout=30)
        assert processes_mentioning(marker, but=pod.proc.pid) == []
        zombies = [
            p for p in psutil.Process(pod.proc.pid).children() if p.status() == psutil.STATUS_ZOMBIE
        ]
        assert zombies == []
        pod.start(0, 1, free_port(), faultCount=1)
        wait_for("workers again", lambda: len(processes_mentioning(marker, but=pod.proc.pid)) >= 6)
    assert processes_mentioning(marker) == []


@pytest.mark.slow
def test_pre_and_post_train_scripts(tmp_path: Path) -> None:
    failing = tmp_path / "pre_fail.py"
    failing.write_text("import sys\nprint('checking', file=sys.stderr)\nsys.exit(7)\n")
    agent = ("--pre-train-script", str(failing), "--pre-train-args", "a b")
    with agents(tmp_path / "fail", 1, _argv("--steps", "3", agent=agent)) as (pod,):
        pod.start(0, 1, free_port())
        faulted = pod.wait_state(AgentState.FAULTED, timeout=30)
        assert faulted.reason == "PreTrainScriptFailed"
        assert "code 7" in (faulted.message or "") and "checking" in (faulted.message or "")
        assert faulted.trainguard is not None and faulted.trainguard.worker_pids == []

    done = tmp_path / "post.txt"
    post = tmp_path / "post.py"
    post.write_text(f"import sys\nopen({str(done)!r}, 'w').write(' '.join(sys.argv[1:]))\n")
    pre = tmp_path / "pre.sh"
    pre.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "pre.txt"}\n')
    pre.chmod(0o755)
    agent = ("--pre-train-script", str(pre), "--pre-train-args", "x 'y z'")
    agent += ("--post-train-script", str(post), "--post-train-args", "--done 1")
    with agents(tmp_path / "ok", 1, _argv("--steps", "3", agent=agent)) as (pod,):
        pod.start(0, 1, free_port())
        pod.wait_state(AgentState.COMPLETED, timeout=30)
        assert done.read_text() == "--done 1"
        assert (tmp_path / "pre.txt").read_text().strip() == "x y z"


@pytest.mark.slow
def test_worker_env_socket_progress_and_crash_exit_code(tmp_path: Path) -> None:
    argv = _argv("--socket", "--print-env", "--exit-rank", "1", "--exit-after", "20")
    argv += ["--exit-code", "3"]
    with agents(tmp_path, 1, argv) as (pod,):
        progress = {"trainguard": {"progressCount": 5, "progressData": "step_5"}}
        pod.start(1, 3, 4242, faultCount=2, progress=progress)
        faulted = pod.wait_state(AgentState.FAULTED, timeout=30)
        assert faulted.reason == "WorkerCrash"
        failure = faulted.trainguard.failures[0]  # type: ignore[union-attr]
        assert (failure.local_rank, failure.global_rank, failure.exitcode) == (1, 3, 3)
        env = next(line for line in pod.client.logs(rank=3, tail=50) if line.startswith("ENV"))
        for pair in (
            "RANK=3",
            "LOCAL_RANK=1",
            "WORLD_SIZE=6",
            "LOCAL_WORLD_SIZE=2",
            "GROUP_RANK=1",
            "MASTER_PORT=4242",
            "TORCHELASTIC_RESTART_COUNT=2",
            "JOB_RESTART_COUNT=2",
            "TRAINGUARD_RESUME_STEP=5",
            f"TRAINGUARD_SHM_DIR={pod.dir / 'shm'}",
            "TRAINGUARD_AGENT_TOKEN=",  # the agent's token is not handed to user code
        ):
            assert pair in env.split(), pair
        assert faulted.progress is not None
        checkpoint, stamped = dict(faulted.progress["trainguard"]), {"step", "stepTime"}
        assert {k: v for k, v in checkpoint.items() if k not in stamped} == {
            "progressCount": 10,
            "progressData": "/m/10",
            "steps": [5, 10],
        }
        assert checkpoint["step"] >= 10  # the newest step every rank logged (agent timeline)
        assert faulted.trainguard.resume is not None  # type: ignore[union-attr]
        assert faulted.trainguard.resume.step == 5  # type: ignore[union-attr]
        assert sys.executable  # workers ran under this interpreter


@pytest.mark.slow
def test_extensions_add_socket_handlers_and_guarded_routes(tmp_path: Path) -> None:
    env = {"TRAINGUARD_AGENT_EXTENSIONS": "tests.integration.agent.sample_extension:register"}
    with agents(tmp_path, 1, _argv("--fetch", "--steps", "3"), env=env) as (pod,):
        pod.start(0, 1, free_port())
        pod.wait_state(AgentState.COMPLETED, timeout=30)
        fetched = [line for line in pod.client.logs(rank=1, tail=20) if "FETCHED" in line]
        assert fetched == [f"FETCHED {pod.dir / 'shm'}/step_7"]
        assert httpx.get(pod.url + "/replicas").status_code == 401
        body = httpx.get(pod.url + "/replicas", headers={"Authorization": f"Bearer {TOKEN}"})
        assert body.json()["pod"] == "pod-0"
        assert sorted(s["rank"] for s in body.json()["seen"]) == [0, 1]


def test_unloadable_extension_stops_the_agent_with_a_clear_error(tmp_path: Path) -> None:
    env = {"TRAINGUARD_AGENT_EXTENSIONS": "no_such_module_xyz:register"}
    with pytest.raises(AssertionError, match="cannot load 'no_such_module_xyz:register'"):
        AgentProcess(tmp_path, "bad-ext", _argv(), env=env)


@pytest.mark.slow
def test_hot_spares_run_workers_with_torch_already_imported(tmp_path: Path) -> None:
    argv = _argv("--print-modules", "--exit-rank", "0", "--exit-after", "3", "--exit-code", "1")
    with agents(tmp_path, 1, [*argv[:2], "--hot-spares", *argv[2:]]) as (pod,):
        for attempt in range(2):
            pod.start(0, 1, free_port(), faultCount=attempt)
            faulted = pod.wait_state(AgentState.FAULTED, timeout=60)
            pids = faulted.trainguard.worker_pids  # type: ignore[union-attr]
            for rank in (0, 1):
                lines = pod.client.logs(rank=rank, tail=100_000)
                assert f"TORCH_PRELOADED True PID {pids[rank]}" in lines, lines[:3]
            pod.client.stop()
            pod.wait_state(AgentState.READY, timeout=30)
